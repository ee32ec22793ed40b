"""Turn a plain (uncompressed, UTF-8) file into Parquet with DuckDB, streaming.

Column names are made safe here; the mapping travels back to the manifest.
"""

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc

from lakehouse.duck import load_extension
from lakehouse.errors import IngestError
from lakehouse.layers import quote_ident, quote_literal, safe_column_names
from lakehouse.sniff import HEAD, Format


@dataclass(frozen=True)
class Converted:
    rows: int
    columns: list[tuple[str, str]]  # (safe name, DuckDB type)
    mapping: list[tuple[str, str]]  # (name in the file, safe name)
    details: dict[str, str]  # how the file was read (dialect, header...)


# How many columns may fall back to VARCHAR after a late type mismatch before all do.
_MAX_TYPE_RETRIES = 8
_CONVERT_RE = re.compile(r'Error when converting column "(?P<col>[^"]+)"')
_LINE_RE = re.compile(r"CSV Error on Line: (?P<line>\d+)")


def convert(con: duckdb.DuckDBPyConnection, fmt: Format, src: Path, dest: Path) -> Converted:
    """Write `src` as one Parquet file `dest`; IngestError says what was wrong and where."""
    path = quote_literal(str(src))
    details: dict[str, str] = {}
    if fmt == "csv":
        opts, details, rigid = _csv_options(con, src)
        if rigid:
            return _copy(con, rigid, dest, details)
        types: dict[str, str] = {}
        for _ in range(_MAX_TYPE_RETRIES):
            try:
                return _copy(con, _csv_sql(path, opts, types), dest, details)
            except _TypeMismatch as e:  # the sniffer's sample missed a later value
                types[e.column] = "VARCHAR"
        return _copy(con, _csv_sql(path, {**opts, "all_varchar": "true"}, {}), dest, details)
    if fmt == "json":
        return _copy(con, f"read_json({path}, format='auto')", dest, details)
    if fmt == "parquet":
        return _copy(con, f"read_parquet({path})", dest, details)
    if fmt == "xlsx":
        load_extension(con, "excel")
        return _copy(con, f"read_xlsx({path}, header=true)", dest, details)
    con.register("_ingest_arrow", _arrow_reader(fmt, src))
    return _copy(con, "_ingest_arrow", dest, details)


class _TypeMismatch(Exception):
    def __init__(self, column: str) -> None:
        self.column = column


def _copy(
    con: duckdb.DuckDBPyConnection, relation: str, dest: Path, details: dict[str, str]
) -> Converted:
    try:
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        safe = safe_column_names(names)
        select = ", ".join(
            f"{quote_ident(n)} AS {quote_ident(s)}" for n, s in zip(names, safe, strict=True)
        )
        rows = con.execute(
            f"COPY (SELECT {select} FROM {relation}) TO {quote_literal(str(dest))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        ).fetchall()[0][0]
        out = quote_literal(str(dest))
        types = con.execute(f"DESCRIBE SELECT * FROM read_parquet({out})").fetchall()
    except duckdb.Error as e:
        m = _CONVERT_RE.search(str(e))
        if m and isinstance(e, (duckdb.ConversionException, duckdb.InvalidInputException)):
            raise _TypeMismatch(m.group("col")) from e
        raise _translate(e, relation.split("(")[0]) from e
    return Converted(
        int(rows), [(t[0], t[1]) for t in types], list(zip(names, safe, strict=True)), details
    )


def _arrow_reader(fmt: Format, src: Path) -> pa.RecordBatchReader:
    try:
        if fmt == "feather":  # Feather v1 has no streaming reader; it predates 2019 and is small
            return feather.read_table(src).to_reader()
        source = pa.memory_map(str(src))
        try:
            f = ipc.open_file(source)
            batches = (f.get_batch(i) for i in range(f.num_record_batches))
            return pa.RecordBatchReader.from_batches(f.schema, batches)
        except pa.ArrowInvalid:
            return ipc.open_stream(source)
    except (pa.ArrowException, OSError) as e:
        raise IngestError(
            f"Arrow could not read this file: {e}", title="Unreadable Arrow file"
        ) from e


def _csv_options(
    con: duckdb.DuckDBPyConnection, src: Path
) -> tuple[dict[str, str], dict[str, str], str | None]:
    """Sniff the dialect, then pin it: DuckDB's sniffer may skip leading rows or drop a header.

    Returns the options, what was detected, and a rigid all-text relation when even the pinned
    dialect cannot be sniffed (ragged rows), so that reading it names the bad line.
    """
    try:
        row = con.execute(
            "SELECT Delimiter, Quote, Escape, HasHeader, Columns FROM sniff_csv(?)", [str(src)]
        ).fetchone()
        assert row is not None
        delim, quote, escape, has_header, columns = row
    except duckdb.Error:
        delim, quote, escape, has_header, columns = _python_dialect(src)
    # A header of plain words looks like a row of strings to the sniffer: all-VARCHAR columns
    # with no header detected is almost always a header the sniffer could not tell apart.
    if not has_header and all(c["type"] == "VARCHAR" for c in columns):
        has_header = True
    opts = {
        "delim": quote_literal(delim),
        "quote": quote_literal("" if quote == "(empty)" else quote),
        "escape": quote_literal("" if escape == "(empty)" else escape),
        "header": "true" if has_header else "false",
        "skip": "0",
        "strict_mode": "true",
    }
    details = {"delimiter": delim, "quote": quote, "header": opts["header"]}
    try:
        con.execute(f"DESCRIBE SELECT * FROM {_csv_sql(quote_literal(str(src)), opts, {})}")
    except duckdb.Error:
        return opts, details, _csv_rigid(con, src, quote_literal(str(src)), opts)
    return opts, details, None


def _csv_sql(path: str, opts: dict[str, str], types: dict[str, str]) -> str:
    args = "".join(f", {k}={v}" for k, v in opts.items())
    if types:
        body = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in types.items())
        args += f", types={{{body}}}"
    return f"read_csv({path}{args})"


def _csv_rigid(con: duckdb.DuckDBPyConnection, src: Path, path: str, opts: dict[str, str]) -> str:
    """No sniffing at all: every column as text from the header, so errors carry a line."""
    header = _python_header(src, opts)
    cols = ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in header)
    rel = (
        f"read_csv({path}, auto_detect=false"
        + "".join(f", {k}={v}" for k, v in opts.items())
        + f", columns={{{cols}}})"
    )
    try:
        con.execute(f"SELECT count(*) FROM {rel}").fetchall()
    except duckdb.Error as e:
        raise _translate(e, "csv") from e
    return rel


def _python_dialect(src: Path) -> tuple[str, str, str, bool, list[dict[str, str]]]:
    with open(src, encoding="utf-8", errors="replace", newline="") as f:
        sample = f.read(HEAD)
    try:
        d = csv.Sniffer().sniff(sample, delimiters=",\t;|")
        delim, quote = d.delimiter, d.quotechar or '"'
    except csv.Error:
        delim, quote = ",", '"'
    return delim, quote, quote, True, []


def _python_header(src: Path, opts: dict[str, str]) -> list[str]:
    delim = opts["delim"].strip("'").replace("''", "'")
    with open(src, encoding="utf-8-sig", errors="replace", newline="") as f:
        first = next(csv.reader(f, delimiter=delim or ","), [])
    if opts["header"] == "true":
        return [c or f"column{i}" for i, c in enumerate(first)]
    return [f"column{i}" for i in range(len(first))]


def _translate(e: duckdb.Error, fmt: str) -> IngestError:
    text = str(e).split("\n\n  file =")[0].split("Possible fixes:")[0].strip()
    text = re.sub(r"^[A-Za-z ]+Error: ", "", text)
    m = _LINE_RE.search(text)
    if m and "Expected Number of Columns" in text:
        cols = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
        found = f" has {cols.group(2)} fields where the header has {cols.group(1)}" if cols else ""
        return IngestError(
            f"Line {m.group('line')}{found}: rows must all have the same number of fields "
            f"(ragged rows). {text.splitlines()[1] if len(text.splitlines()) > 1 else ''}".strip(),
            title="Ragged rows",
        )
    if "unicode" in text.lower():
        return IngestError(text, title="Undecodable bytes")
    return IngestError(text, title=f"Could not read this {fmt.upper()} file")
