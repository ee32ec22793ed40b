"""Write a DuckDB relation to Parquet with safe column names; DuckDB errors made readable."""

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from lakehouse.duck import without_line_context
from lakehouse.errors import IngestError
from lakehouse.ingest.stream import mb
from lakehouse.layers import quote_ident, quote_literal, safe_column_names


@dataclass(frozen=True)
class Converted:
    rows: int
    columns: list[tuple[str, str]]  # (safe name, DuckDB type)
    mapping: list[tuple[str, str]]  # (name in the file, safe name)
    details: dict[str, str]  # how the file was read (dialect, header...)


# How DuckDB (and our own guards) name the column whose value did not fit its type.
_MISMATCH_RES = (
    re.compile(r'Error when converting column "(?P<col>[^"]+)"'),
    re.compile(r"lossy-cast:(?P<col>.+?)(?:\n|$)"),
)
_LINE_RE = re.compile(r"CSV Error on Line: (?P<line>\d+)")
# Past its sample, DuckDB's CSV reader rounds '2.5' to 3 in a BIGINT column (duckdb#25824).
# So such columns are read as DOUBLE (exact for integers below 2**53) and narrowed here; a
# fraction or a bigger integer fails the narrowing and the column is read again as VARCHAR.
# Cheaper than reading every such column as text and casting it.
# DuckDB's JSON reader types mixed-sign integers as HUGEINT, which its Parquet writer stores
# as DOUBLE: narrow them to BIGINT, or to DECIMAL(38,0) when they do not fit.
# cast name -> (type DuckDB reads, SQL producing the final value; {c} column, {lossy} error)
CASTS = {
    "BIGINT": (
        "DOUBLE",
        "CASE WHEN {c} = trunc({c}) AND abs({c}) < 9007199254740992 THEN CAST({c} AS BIGINT) "
        "WHEN {c} IS NULL THEN NULL ELSE error({lossy}) END",
    ),
    "NARROW": (
        "",
        "coalesce(TRY_CAST({c} AS BIGINT), "
        "CASE WHEN {c} IS NULL THEN NULL ELSE error({lossy}) END)",
    ),
    "WIDE": (
        "",
        "coalesce(TRY_CAST({c} AS DECIMAL(38,0)), "
        "CASE WHEN {c} IS NULL THEN NULL ELSE error({lossy}) END)",
    ),
}


class TypeMismatch(Exception):
    """A value past the sniffed sample does not fit its column's type; retry that column."""

    def __init__(self, column: str) -> None:
        self.column = column


def describe(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    try:
        return [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    except duckdb.Error as e:
        raise ingest_error(e, relation.split("(")[0]) from e


def select_expr(name: str, cast: str | None) -> str:
    col = quote_ident(name)
    if cast is None:
        return col
    lossy = quote_literal(f"lossy-cast:{name}")
    return CASTS[cast][1].format(c=col, lossy=lossy)


def copy_to_parquet(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    dest: Path,
    details: dict[str, str],
    casts: dict[str, str] | None = None,
    source_names: list[str] | None = None,
) -> Converted:
    names = [n for n, _ in describe(con, relation)]
    # DuckDB renames duplicate and blank headers; the manifest keeps the file's own names.
    original = source_names if source_names and len(source_names) == len(names) else names
    safe = safe_column_names(original)
    casts = casts or {}
    select = ", ".join(
        f"{select_expr(n, casts.get(n))} AS {quote_ident(s)}"
        for n, s in zip(names, safe, strict=True)
    )
    out = quote_literal(str(dest))
    try:
        rows = con.execute(
            # Snappy, DuckDB's default: zstd is smaller but slower to write, and bronze
            # is written once per file while silver/gold (zstd) are what gets read.
            f"COPY (SELECT {select} FROM {relation}) TO {out} (FORMAT parquet)"
        ).fetchall()[0][0]
        types = con.execute(f"DESCRIBE SELECT * FROM read_parquet({out})").fetchall()
    except duckdb.Error as e:
        if isinstance(e, (duckdb.ConversionException, duckdb.InvalidInputException)):
            for pattern in _MISMATCH_RES:
                if m := pattern.search(str(e)):
                    raise TypeMismatch(m.group("col")) from e
        raise ingest_error(e, relation.split("(")[0]) from e
    return Converted(
        int(rows), [(t[0], t[1]) for t in types], list(zip(original, safe, strict=True)), details
    )


_LINE_SIZE_RE = re.compile(
    r"Maximum line size of (?P<max>\d+) bytes exceeded\. Actual Size: *(?P<actual>\d+)"
)
_ORIGINAL_LINE = "Original Line: "


def _shorten_original_line(text: str, keep: int = 200) -> str:
    """DuckDB quotes the offending line whole: for a 10 MB line, or a quote left open that
    runs to the end of the file, that is 10 KB of message. Its explanation is the last line."""
    start = text.find(_ORIGINAL_LINE)
    end = text.rfind("\n")
    if start < 0 or end < start:
        return text
    start += len(_ORIGINAL_LINE)
    if end - start <= keep:
        return text
    return text[: start + keep] + "…" + text[end:]


def ingest_error(e: duckdb.Error, fmt: str) -> IngestError:
    """DuckDB's message without its SQL context, hints for SQL users or staging paths."""
    text = str(e).split("\n\n  file =")[0].split("Possible fixes:")[0]
    text = text.split("Possible Solution:")[0]
    text = without_line_context(text).split("\nLINE ")[0].strip()
    text = _shorten_original_line(text)
    text = re.sub(r"^[A-Za-z ]+Error: ", "", text)
    text = re.sub(r"(\"|')?/[^\s\"']*/staging/[^\s\"']*(\"|')?", "the file", text)
    text = re.sub(r"Original Line: *\r?\n", "Original Line: ", text)
    fmt = {
        "read_csv": "csv",
        "read_json": "json",
        "read_parquet": "parquet",
        "read_xlsx": "xlsx",
        "_ingest_arrow": "arrow",
    }.get(fmt, fmt)
    m = _LINE_RE.search(text)
    size = _LINE_SIZE_RE.search(text)
    if m and size:
        most, actual = int(size.group("max")), int(size.group("actual"))
        return IngestError(
            f"Line {m.group('line')} is {mb(actual)} long; a CSV line may hold at most "
            f"{mb(most)}. A quote that is never closed runs the lines after it together; "
            "values this long belong in a Parquet file.",
            title="Line too long",
        )
    if m and "unterminated quote" in text:
        start = text.find(_ORIGINAL_LINE)
        row = text[start + len(_ORIGINAL_LINE) :].split("\n")[0][:200] if start >= 0 else ""
        return IngestError(
            f"Line {m.group('line')} opens a quote that is never closed, so the rest of the "
            f"file would run into one value: {row}. Close it, or double a quote that is part "
            'of the text ("").',
            title="Unclosed quote",
        )
    if m and "Expected Number of Columns" in text:
        cols = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
        found = f" has {cols.group(2)} fields where the header has {cols.group(1)}" if cols else ""
        lines = text.splitlines()
        return IngestError(
            f"Line {m.group('line')}{found}: rows must all have the same number of fields "
            f"(ragged rows). {lines[1] if len(lines) > 1 else ''}".strip(),
            title="Ragged rows",
        )
    if "unicode" in text.lower():
        return IngestError(text, title="Undecodable bytes")
    return IngestError(text, title=f"Could not read this {fmt.upper()} file")
