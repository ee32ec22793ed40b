"""What a file is: its format (from the name and the first bytes), compression and text encoding."""

import codecs
from typing import Literal

from lakehouse.errors import IngestError

Format = Literal["csv", "json", "parquet", "arrow", "feather", "xlsx"]
Compression = Literal["gzip", "zstd"]

HEAD = 64 * 2**10
_TEXT_EXT = {
    "csv": "csv",
    "tsv": "csv",
    "txt": "csv",
    "psv": "csv",
    "tab": "csv",
    "dat": "csv",
    "json": "json",
    "ndjson": "json",
    "jsonl": "json",
}
_BINARY_EXT = {
    "parquet": "parquet",
    "pq": "parquet",
    "arrow": "arrow",
    "ipc": "arrow",
    "feather": "arrow",
    "xlsx": "xlsx",
}
_UNSUPPORTED_MAGIC = {
    b"\xd0\xcf\x11\xe0": "a legacy Excel/Office file (.xls): save it as .xlsx or CSV",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"BZh": "bzip2-compressed: recompress with gzip or zstd",
    b"\xfd7zXZ": "xz-compressed: recompress with gzip or zstd",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"SQLite format 3": "an SQLite database",
}


def suffixes(filename: str) -> list[str]:
    """Lower-case extensions of a file name, outermost last: `a.CSV.gz` -> ['csv', 'gz']."""
    parts = filename.lower().split(".")[1:]
    return [p for p in parts if p.isalnum() and len(p) <= 8]


def detect_compression(head: bytes) -> Compression | None:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return None


def detect_format(filename: str, head: bytes) -> Format:
    """Magic bytes first, then the extension; refuse what DuckDB cannot read with a reason."""
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head.startswith(b"\xff\xff\xff\xff"):
        return "arrow"
    if head.startswith(b"FEA1"):
        return "feather"
    exts = [e for e in suffixes(filename) if e not in ("gz", "gzip", "zst", "zstd")]
    ext = exts[-1] if exts else ""
    if head.startswith(b"PK\x03\x04"):
        if ext == "xlsx" or b"xl/" in head or b"[Content_Types].xml" in head:
            return "xlsx"
        raise IngestError(
            "This is a ZIP archive. Unzip it and upload the files inside.",
            title="Unsupported file type",
        )
    for magic, what in _UNSUPPORTED_MAGIC.items():
        if head.startswith(magic):
            raise IngestError(f"This file is {what}.", title="Unsupported file type")
    if ext in _BINARY_EXT:
        raise IngestError(
            f"The file is named .{ext} but its content is not {ext.upper()} "
            "(the magic bytes do not match). It may be truncated or mislabelled.",
            title="File content does not match its name",
        )
    looks_binary(head)
    if ext in _TEXT_EXT:
        return "csv" if _TEXT_EXT[ext] == "csv" else "json"
    if ext and b"\x00" in head:
        raise IngestError(f"Files of type .{ext} are not supported.", title="Unsupported file type")
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json" if stripped[:1] in (b"[", b"{") else "csv"


def looks_binary(head: bytes) -> None:
    """Refuse binary junk early: NUL bytes in text that is not UTF-16."""
    if detect_bom(head) or _utf16_without_bom(head):
        return
    sample = head[:8192]
    if b"\x00" in sample:
        controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
        if controls > len(sample) // 100:
            raise IngestError(
                "The file contains binary data (NUL and control bytes), not text. "
                "Supported: CSV/TSV, JSON/NDJSON, Parquet, Arrow/Feather, Excel .xlsx, "
                "optionally gzip- or zstd-compressed.",
                title="Not a text file",
            )


def detect_bom(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _utf16_without_bom(head: bytes) -> str | None:
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > len(odd) * 0.4 and even.count(0) < len(even) * 0.05:
        return "utf-16-le"
    if even.count(0) > len(even) * 0.4 and odd.count(0) < len(odd) * 0.05:
        return "utf-16-be"
    return None


def detect_encoding(head: bytes) -> str:
    """UTF-8 unless the sample says otherwise; Windows-1252 covers Latin-1 text in practice."""
    bom = detect_bom(head) or _utf16_without_bom(head)
    if bom:
        return bom
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:  # cp1252 leaves five bytes undefined; Latin-1 maps every byte
        return "latin-1"
