"""One streaming pass over a file.

The pass hashes the original bytes, decompresses, validates or transcodes text to UTF-8 and
enforces the size limit, chunk by chunk, so memory stays flat for files larger than RAM.
"""

import codecs
import contextlib
import gzip
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from lakehouse.errors import IngestError
from lakehouse.ingest.detect import HEAD, Compression

CHUNK = 4 * 2**20


class _Hashing(io.RawIOBase):
    """A reader that hashes and counts the raw bytes passing through it."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        n = _readinto(self.f, b)
        self.sha.update(b[:n])
        self.count += n
        return n


def _readinto(f: BinaryIO, buf: memoryview) -> int:
    """Fill `buf` from `f` without an intermediate bytes object where the stream allows."""
    readinto = getattr(f, "readinto", None)
    if readinto is not None:
        return int(readinto(buf) or 0)
    data = f.read(len(buf))
    buf[: len(data)] = data
    return len(data)


class _ZstdFrames(io.RawIOBase):
    """Decompress zstd frame after frame, at most `size` bytes per read.

    zstd turns 8 KB into 256 MB, and zstandard's decompressobj returns all the output of the
    input it is given at once (a small file can take gigabytes of memory before the size limit
    could refuse it), so its bounded stream reader is used. That reader takes a file cut inside a
    frame for a complete one: at the end, the frame and block headers are walked to tell.
    """

    def __init__(self, raw: _Hashing) -> None:
        self.raw = raw
        self.reader = zstandard.ZstdDecompressor().stream_reader(
            raw,  # type: ignore[arg-type]  # any object with read() will do
            read_size=CHUNK,
            read_across_frames=True,
            closefd=False,
        )

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        out = self.reader.read(size)
        if not out and _zstd_cut(self.raw.f):
            raise zstandard.ZstdError("input ends inside a frame")
        return out


_ZSTD_SKIPPABLE = 0x184D2A50  # magic of a skippable frame, low 4 bits free


def _zstd_cut(f: BinaryIO) -> bool:
    """Does the input end inside a frame? Reads 3 bytes per block (blocks hold up to 128 KB)."""
    end, pos = f.seek(0, io.SEEK_END), 0
    while pos < end:
        f.seek(pos)
        head = f.read(18)  # the longest frame header
        if len(head) >= 8 and int.from_bytes(head[:4], "little") & ~0xF == _ZSTD_SKIPPABLE:
            pos += 8 + int.from_bytes(head[4:8], "little")
            continue
        try:
            pos += zstandard.frame_header_size(head)
            checksum = zstandard.get_frame_parameters(head).has_checksum
        except zstandard.ZstdError:
            return True
        last = 0
        while not last:
            f.seek(pos)
            header = f.read(3)
            if len(header) < 3:
                return True
            block = int.from_bytes(header, "little")
            last, kind, size = block & 1, (block >> 1) & 3, block >> 3
            pos += 3 + (1 if kind == 1 else size)  # kind 1: one byte repeated `size` times
            if pos > end:
                return True
        pos += 4 if checksum else 0
    return pos > end


# A non-ASCII character as UTF-8 writes it: a lead byte and its continuation bytes.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


class _MixedEncodings:
    """Watch a file read as Windows-1252/Latin-1 for lines that are UTF-8 text.

    Such a file was pasted together from two sources. Read as one encoding, its UTF-8 lines
    turn into mojibake ('cafÃ©') without any error, so it is refused, naming both lines (as a
    UTF-8 file with a stray Latin-1 byte is). Only whole lines are judged; a line of Latin-1
    whose every accented letter happens to form valid UTF-8 is the rare false alarm.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.tail = b""
        self.lines = 0
        self.other: tuple[int, int] | None = None  # (line, byte) of the first non-UTF-8 byte

    def feed(self, chunk: bytes, final: bool = False) -> None:
        data = self.tail + chunk
        cut = len(data) if final else data.rfind(b"\n") + 1
        whole, self.tail = data[:cut], data[cut:]
        if len(self.tail) > HEAD:  # a line this long is not worth holding on to
            self.tail = b""
        if self.other is None:
            try:
                whole.decode("utf-8")
            except UnicodeDecodeError as e:
                self.other = (self.lines + whole.count(b"\n", 0, e.start) + 1, whole[e.start])
        pos = 0
        while m := _UTF8_SEQUENCE.search(whole, pos):
            start = whole.rfind(b"\n", 0, m.start()) + 1
            end = whole.find(b"\n", m.end())
            end = len(whole) if end < 0 else end
            try:
                whole[start:end].decode("utf-8")
            except UnicodeDecodeError:
                pos = end + 1
                continue
            raise self._error(self.lines + whole.count(b"\n", 0, start) + 1)
        self.lines += whole.count(b"\n")

    def _error(self, line: int) -> IngestError:
        name = {"cp1252": "Windows-1252", "latin-1": "Latin-1"}.get(self.encoding, self.encoding)
        other = ""
        if self.other:
            at, byte = self.other
            char = bytes([byte]).decode(self.encoding, errors="replace")
            other = f" but line {at} is {name} (byte {byte:02x}, {char!r})"
        return IngestError(
            f"Line {line} is UTF-8 text{other}: the file mixes encodings, and reading it as "
            "either would garble the other lines. Re-save it as UTF-8.",
            title="Mixed text encodings",
        )


@dataclass(frozen=True)
class PassResult:
    sha256: str
    raw_bytes: int
    out_bytes: int


def mb(n: int) -> str:
    return f"{n / 2**20:,.1f}".removesuffix(".0") + " MB"


def _too_big(limit: int) -> IngestError:
    return IngestError(
        f"The file is larger than the limit of {mb(limit)} "
        "(RATATOUILLE_MAX_INGEST_MB; for compressed files the limit applies to the content).",
        title="File too large",
    )


def check_zip_content(path: Path, limit: int) -> None:
    """An .xlsx is a ZIP archive: like gzip content, what it unpacks to counts against the
    limit (an 8 MB workbook can hold 140 MB of sheet XML, and a crafted one 1,000 times its size).
    The sizes the archive declares are what is checked: a forged one would get past this."""
    try:
        with zipfile.ZipFile(path) as z:
            size = sum(info.file_size for info in z.infolist())
    except zipfile.BadZipFile:
        return  # DuckDB says what is wrong with it
    if size > limit:
        raise _too_big(limit)


def stream_pass(
    src: BinaryIO,
    *,
    dest: Path | None = None,
    compression: Compression | None = None,
    encoding: str | None = None,
    max_bytes: int,
    on_bytes: Callable[[int], None] | None = None,
) -> PassResult:
    """Copy `src` to `dest` (if given): decompress, decode `encoding` to UTF-8, hash raw bytes.

    With encoding 'utf-8' the text is validated; an IngestError names the line of the first
    undecodable byte.
    """
    if compression is None and encoding is None:
        return _copy_plain(src, dest, max_bytes, on_bytes)
    raw = _Hashing(src)
    reader: BinaryIO
    if compression == "gzip":
        reader = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    elif compression == "zstd":
        reader = _ZstdFrames(raw)  # type: ignore[assignment]
    else:
        reader = raw  # type: ignore[assignment]
    decoder = codecs.getincrementaldecoder(encoding)("strict") if encoding else None
    mixed = _MixedEncodings(encoding) if encoding in ("cp1252", "latin-1") else None
    total, lines = 0, 0
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(dest, "wb")) if dest else None
        while True:
            chunk = _read(reader, compression)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise _too_big(max_bytes)
            if mixed:
                mixed.feed(chunk)
            if decoder:
                chunk = _decode(decoder, chunk, encoding or "", lines)
                lines += chunk.count(b"\n")
            if out:
                out.write(chunk)
            if on_bytes:
                on_bytes(raw.count)
        if decoder:
            _decode(decoder, b"", encoding or "", lines, final=True)
        if mixed:
            mixed.feed(b"", final=True)
    return PassResult(raw.sha.hexdigest(), raw.count, total)


def _copy_plain(
    src: BinaryIO, dest: Path | None, max_bytes: int, on_bytes: Callable[[int], None] | None
) -> PassResult:
    """The common case, kept lean: one reused buffer, hashed and written as it fills."""
    sha, total = hashlib.sha256(), 0
    buf = memoryview(bytearray(CHUNK))
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(dest, "wb")) if dest else None
        while n := _readinto(src, buf):
            total += n
            if total > max_bytes:
                raise _too_big(max_bytes)
            sha.update(buf[:n])
            if out:
                out.write(buf[:n])
            if on_bytes:
                on_bytes(total)
    return PassResult(sha.hexdigest(), total, total)


def _read(reader: BinaryIO, compression: Compression | None) -> bytes:
    try:
        return reader.read(CHUNK)
    except (EOFError, gzip.BadGzipFile, zlib.error, zstandard.ZstdError) as e:
        raise IngestError(
            f"The {compression} stream is truncated or corrupt ({e}). Compress the file again "
            "or upload it uncompressed.",
            title="Corrupt compressed file",
        ) from e


def _decode(
    decoder: codecs.IncrementalDecoder, chunk: bytes, encoding: str, lines: int, final: bool = False
) -> bytes:
    try:
        text = decoder.decode(chunk, final=final)
    except UnicodeDecodeError as e:
        line = lines + e.object[: e.start].count(b"\n") + 1
        bad = e.object[e.start : e.end].hex(" ")
        if encoding == "utf-8":
            msg = (
                f"Line {line}: bytes {bad} are not valid UTF-8. The file mixes encodings "
                "or is damaged; re-save it as UTF-8."
            )
        else:
            msg = f"Line {line}: bytes {bad} are not valid {encoding}; re-save the file as UTF-8."
        raise IngestError(msg, title="Undecodable bytes") from e
    return text.encode("utf-8") if encoding != "utf-8" else chunk
