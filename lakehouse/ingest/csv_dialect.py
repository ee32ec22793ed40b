"""CSV to Parquet: sniff the dialect once, pin it, and read values without losing any."""

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from lakehouse.errors import IngestError
from lakehouse.ingest.detect import HEAD
from lakehouse.ingest.parquet_writer import (
    CASTS,
    Converted,
    TypeMismatch,
    copy_to_parquet,
)
from lakehouse.layers import quote_literal

# Columns that may fall back to VARCHAR after a late type mismatch before all of them do.
_MAX_TYPE_RETRIES = 8
# DOUBLE keeps ~17 significant digits: a column whose sample holds longer numbers (ids) is text.
_MAX_DOUBLE_DIGITS = 15


@dataclass(frozen=True)
class Dialect:
    """How the file is read, pinned once: DuckDB and Python's csv module both follow it."""

    delim: str
    quote: str
    escape: str
    header: bool
    date_format: str | None = None
    timestamp_format: str | None = None

    @property
    def details(self) -> dict[str, str]:
        """What the manifest records of it."""
        return {"delimiter": self.delim, "quote": self.quote, "header": str(self.header).lower()}


# DuckDB's time grows faster than the column count, so a header of a few MB could hold an
# ingest for hours.
# Excel stops at 16,384 columns; so does ingest, before DuckDB sees the file.
MAX_COLUMNS = 16_384


def convert_csv(con: duckdb.DuckDBPyConnection, src: Path, dest: Path) -> Converted:
    _check_width(src)
    dialect, sniffed = _sniff(con, src)
    try:
        return _convert_csv_with(con, src, dest, dialect, sniffed)
    except IngestError as e:
        m = re.match(r"Line (\d+)\b", e.msg)
        if e.title != "Ragged rows" or not m:
            raise
        line = _physical_line(src, dialect, int(m.group(1)))
        raise IngestError(f"Line {line}" + e.msg[m.end() :], title=e.title) from e


# Past this many records the exact line costs more than it is worth on an error path.
MAX_LINE_LOOKUP = 2_000_000


def _physical_line(src: Path, dialect: Dialect, record: int) -> int:
    """DuckDB counts records; a quoted field with line breaks makes that differ from lines."""
    if record > MAX_LINE_LOOKUP:
        return record
    with open(src, encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=dialect.delim, quotechar=dialect.quote)
        before = 0
        try:
            for i, _ in enumerate(reader, start=1):
                if i == record:
                    return before + 1
                before = reader.line_num
        except csv.Error:  # a field over the csv module's 128 KB limit: DuckDB's count stands
            pass
    return record


def _convert_csv_with(
    con: duckdb.DuckDBPyConnection,
    src: Path,
    dest: Path,
    dialect: Dialect,
    sniffed: list[str] | None,
) -> Converted:
    path = quote_literal(str(src))
    header = _python_header(src, dialect)
    details = dialect.details
    if sniffed is None or len(sniffed) != len(header):
        return _convert_csv_by_name(con, src, dest, dialect, header)
    # Types as sniffed, pinned by position: DuckDB reads without sniffing again, and its
    # renaming of duplicate or blank headers does not matter (the select renames).
    names = [f"c{i}" for i in range(len(sniffed))]
    typed = dict(zip(names, sniffed, strict=True))
    numeric = [n for n, t in typed.items() if t in ("BIGINT", "DOUBLE")]
    digits = _sample_digits(con, path, dialect, names, numeric)
    long = {n for n, d in digits.items() if d > _MAX_DOUBLE_DIGITS}
    # Long numbers: DOUBLE would round them, so they stay text; 64-bit ids are read natively
    # (the DOUBLE detour cannot hold them).
    text = {n for n in long if typed[n] == "DOUBLE"}
    for _ in range(_MAX_TYPE_RETRIES):
        casts = {n: t for n, t in typed.items() if t in CASTS and n not in text and n not in long}
        cols = {
            n: "VARCHAR" if n in text else CASTS[casts[n]][0] if n in casts else t
            for n, t in zip(names, sniffed, strict=True)
        }
        try:
            return copy_to_parquet(
                con, _csv_sql(path, dialect, columns=cols), dest, details, casts, header
            )
        except TypeMismatch as e:  # the sniffer's sample missed a later value
            text.add(e.column)
    cols = dict.fromkeys(names, "VARCHAR")
    return copy_to_parquet(
        con, _csv_sql(path, dialect, columns=cols), dest, details, source_names=header
    )


def _sample_digits(
    con: duckdb.DuckDBPyConnection,
    path: str,
    dialect: Dialect,
    names: list[str],
    columns: list[str],
) -> dict[str, int]:
    """Most significant digits per column in the sniffer's sample (the first 20,480 rows)."""
    if not columns:
        return {}
    digits = ", ".join(
        f"max(length(ltrim(regexp_replace({n}, '[^0-9]', '', 'g'), '0')))" for n in columns
    )
    text = _csv_sql(path, dialect, columns=dict.fromkeys(names, "VARCHAR"))
    try:
        row = con.execute(f"SELECT {digits} FROM (FROM {text} LIMIT 20480)").fetchone()
    except duckdb.Error:
        return {}  # the full read reports what is wrong, with its line
    assert row is not None
    return {n: d or 0 for n, d in zip(columns, row, strict=True)}


def _convert_csv_by_name(
    con: duckdb.DuckDBPyConnection,
    src: Path,
    dest: Path,
    dialect: Dialect,
    header: list[str],
) -> Converted:
    """When the sniffer could not say: every column as text, with the dialect pinned."""
    path = quote_literal(str(src))
    # A ragged file fails in the copy, and the error names its line.
    rel = _csv_sql(path, dialect, columns={f"c{i}": "VARCHAR" for i in range(len(header))})
    return copy_to_parquet(con, rel, dest, dialect.details, source_names=header)


def _sniff(con: duckdb.DuckDBPyConnection, src: Path) -> tuple[Dialect, list[str] | None]:
    """Sniff once, then pin the dialect: DuckDB's sniffer may skip leading rows or drop a header.

    Returns the dialect and the sniffed column types by position (None when the sniff cannot be
    trusted and the dialect came from Python's csv module).
    """
    try:
        row = con.execute(
            "SELECT Delimiter, Quote, Escape, HasHeader, Columns, SkipRows, DateFormat, "
            "TimestampFormat FROM sniff_csv(?)",
            [str(src)],
        ).fetchone()
        assert row is not None
        delim, quote, escape, has_header, columns, skipped, date_fmt, ts_fmt = row
    except duckdb.Error:
        delim, quote, escape, has_header, columns = _python_dialect(src)
        skipped, date_fmt, ts_fmt = 0, None, None
    if skipped or (len(columns) == 1 and any(d in _first_line(src) for d in ",\t;|")):
        # Ragged rows early in the file make the sniffer skip lines or settle on a delimiter
        # the file does not use: take the evident dialect and let strict reading find the row.
        delim, quote, escape, has_header, columns = _python_dialect(src)
        date_fmt = ts_fmt = None
    # A header of plain words looks like a row of strings to the sniffer: all-VARCHAR columns
    # with no header detected is almost always a header the sniffer could not tell apart.
    if not has_header and all(c["type"] == "VARCHAR" for c in columns):
        has_header = True
    # No quotes in the sample does not mean none later: standard CSV quoting stays on.
    quote = '"' if quote in ("(empty)", "") else quote
    escape = quote if escape in ("(empty)", "") else escape
    dialect = Dialect(delim, quote, escape, bool(has_header), date_fmt, ts_fmt)
    return dialect, [c["type"] for c in columns] if columns else None


ISO_FORMATS = frozenset({"%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"})


def _csv_sql(path: str, dialect: Dialect, columns: dict[str, str]) -> str:
    """read_csv with the dialect and the types pinned: DuckDB sniffs nothing more."""
    opts = {
        "delim": quote_literal(dialect.delim),
        "quote": quote_literal(dialect.quote),
        "escape": quote_literal(dialect.escape),
        "header": str(dialect.header).lower(),
        "skip": "0",
        "strict_mode": "true",
        "allow_quoted_nulls": "false",  # "" is an empty string; only an empty field is NULL
    }
    # ISO dates and timestamps go through DuckDB's own parser: a strptime format for them
    # cost ~15 % of the whole read at SF1 (three DATE columns of `lineitem`).
    if dialect.date_format and dialect.date_format not in ISO_FORMATS:
        opts["dateformat"] = quote_literal(dialect.date_format)
    if dialect.timestamp_format and dialect.timestamp_format not in ISO_FORMATS:
        opts["timestampformat"] = quote_literal(dialect.timestamp_format)
    args = "".join(f", {k}={v}" for k, v in opts.items())
    body = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in columns.items())
    return f"read_csv({path}, auto_detect=false{args}, columns={{{body}}})"


def _check_width(src: Path) -> None:
    with open(src, encoding="utf-8", errors="replace", newline="") as f:
        first = f.readline(2**20)
    widest = max(first.count(d) for d in ",\t;|") + 1
    if widest > MAX_COLUMNS:
        raise IngestError(
            f"The first line has {widest:,} fields; at most {MAX_COLUMNS:,} columns are read "
            "(Excel's limit too). Split the file, or turn columns into rows.",
            title="Too many columns",
        )


def _first_line(src: Path) -> str:
    with open(src, encoding="utf-8", errors="replace", newline="") as f:
        return f.readline(HEAD)


def _python_dialect(src: Path) -> tuple[str, str, str, bool, list[dict[str, str]]]:
    with open(src, encoding="utf-8", errors="replace", newline="") as f:
        sample = f.read(HEAD)
    try:
        d = csv.Sniffer().sniff(sample, delimiters=",\t;|")
        delim, quote = d.delimiter, d.quotechar or '"'
    except csv.Error:  # inconsistent rows: the header's most frequent candidate delimiter
        header = sample.splitlines()[0] if sample else ""
        delim = max(",\t;|", key=header.count)
        quote = '"'
    return delim, quote, quote, True, []


def _python_header(src: Path, dialect: Dialect) -> list[str]:
    """The first record as the file spells it (DuckDB renames duplicates and blanks)."""
    with open(src, encoding="utf-8-sig", errors="replace", newline="") as f:
        try:
            first = next(csv.reader(f, delimiter=dialect.delim, quotechar=dialect.quote), [])
        except csv.Error as e:  # the csv module refuses fields over 128 KB
            raise IngestError(
                f"The first line could not be read as a header ({e}). Column names are short: "
                "this file may have no line breaks, or a quote that is never closed.",
                title="Unreadable header",
            ) from e
    if dialect.header:
        return first
    return [f"column{i}" for i in range(len(first))]
