"""The original bytes: where ingest finds them, and the copy and sha256 kept in bronze.

A path is read by DuckDB where it lies while a thread copies it into staging and hashes the
copy; a stream is spooled to staging first (hashed on the way). The copy is made by the kernel
(`sendfile`): a read/write loop in Python cost about three times the CPU at SF1 (773 MB: ~1.9
CPU s against ~0.25 s, the hash ~0.6 s either way), and on a small machine DuckDB's parse is
what that CPU is taken from.
"""

import io
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from lakehouse.errors import IngestError, LakehouseError, StorageError
from lakehouse.ingest.stream import PassResult, mb, stream_pass

_SHA256 = re.compile(r"[0-9a-f]{64}")


def stage(
    source: Path | str | BinaryIO,
    staging: Path,
    limit: int,
    on_bytes: Callable[[float], None],
) -> tuple[Path, PassResult | None]:
    """A path is used where it lies; a stream is spooled to staging (hashed on the way).

    `on_bytes` gets the fraction of a stream received so far.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise IngestError(f"{path} does not exist or is not a file.", title="File not found")
        if path.stat().st_size > limit:
            raise IngestError(
                f"{path.name} is {mb(path.stat().st_size)}; the limit is {mb(limit)} "
                "(RATATOUILLE_MAX_INGEST_MB).",
                title="File too large",
            )
        return path, None
    dest = staging / "original"
    total = _stream_size(source) or limit
    result = stream_pass(
        source,
        dest=dest,
        max_bytes=limit,
        on_bytes=lambda n: on_bytes(min(n / total, 1.0)),
    )
    return dest, result


def _stream_size(stream: BinaryIO) -> int | None:
    """Bytes left in a seekable stream (uploads are), for an honest progress fraction."""
    try:
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
        return max(end - here, 1)
    except (OSError, AttributeError, ValueError):
        return None


def given_hash(path: Path, sha256: str) -> PassResult:
    """The caller's sha256 of a file it owns (hashed while receiving it): not read again."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"sha256 must be 64 lower-case hex digits, not {sha256!r}")
    size = path.stat().st_size
    return PassResult(sha256, size, size)


def copy_and_hash(src: Path, dest: Path | None, limit: int) -> PassResult:
    """Copy `src` to `dest` (unless None) in the kernel, then hash what was kept.

    Hashing the copy, not the source, makes the recorded sha256 that of the bytes in bronze
    even if the user's file changes meanwhile. The copy is still in the page cache when read.
    """
    if dest is not None:
        shutil.copyfile(src, dest)  # sendfile(2) on Linux, fcopyfile(3) on macOS
    with open(dest or src, "rb") as f:
        return stream_pass(f, max_bytes=limit)  # also refuses a file that grew past the limit


class Keeper:
    """`copy_and_hash` in a thread, beside DuckDB's parse: the kernel copy and hashlib both
    release the GIL, and the thread is done long before the parse is."""

    def __init__(self, src: Path, dest: Path | None, limit: int) -> None:
        self._out: PassResult | None = None
        self._err: BaseException | None = None

        def run() -> None:
            try:
                self._out = copy_and_hash(src, dest, limit)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                self._err = e

        self._thread = threading.Thread(target=run, name="ingest-copy", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self) -> PassResult:
        self.join()
        if isinstance(self._err, LakehouseError):
            raise self._err
        if self._err:
            raise StorageError(f"Could not copy the file: {self._err}") from self._err
        assert self._out is not None
        return self._out
