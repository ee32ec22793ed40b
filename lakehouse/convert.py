"""Turn a plain (uncompressed, UTF-8) file into Parquet with DuckDB, streaming.

Column names are made safe here; the mapping travels back to the manifest.
"""

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from lakehouse.duck import load_extension
from lakehouse.errors import IngestError
from lakehouse.layers import quote_ident, quote_literal, safe_column_names
from lakehouse.sniff import HEAD, Format

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Converted:
    rows: int
    columns: list[tuple[str, str]]  # (safe name, DuckDB type)
    mapping: list[tuple[str, str]]  # (name in the file, safe name)
    details: dict[str, str]  # how the file was read (dialect, header...)


# Columns that may fall back to VARCHAR after a late type mismatch before all of them do.
_MAX_TYPE_RETRIES = 8
_MISMATCH_RES = (
    re.compile(r'Error when converting column "(?P<col>[^"]+)"'),
    re.compile(r"lossy-cast:(?P<col>.+?)(?:\n|$)"),
)
_LINE_RE = re.compile(r"CSV Error on Line: (?P<line>\d+)")
# Past its sample, DuckDB's CSV reader rounds '2.5' to 3 in a BIGINT column (duckdb#25824).
# So such columns are read as DOUBLE (exact for integers below 2**53) and narrowed here; a
# fraction or a bigger integer fails the narrowing and the column is read again as VARCHAR.
# Costs ~0.1 s per GB of CSV where reading as text and casting cost ~0.6 s.
# DuckDB's JSON reader types mixed-sign integers as HUGEINT, which its Parquet writer stores
# as DOUBLE: narrow them to BIGINT, or to DECIMAL(38,0) when they do not fit.
# cast name -> (type DuckDB reads, SQL producing the final value; {c} column, {lossy} error)
_CASTS = {
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
# DOUBLE keeps ~17 significant digits: a column whose sample holds longer numbers (ids) is text.
_MAX_DOUBLE_DIGITS = 15


class _TypeMismatch(Exception):
    def __init__(self, column: str) -> None:
        self.column = column


def convert(con: duckdb.DuckDBPyConnection, fmt: Format, src: Path, dest: Path) -> Converted:
    """Write `src` as one Parquet file `dest`; IngestError says what was wrong and where."""
    path = quote_literal(str(src))
    if fmt == "csv":
        return _convert_csv(con, src, dest)
    if fmt == "json":
        try:
            return _with_fallback(
                con,
                f"read_json({path}, format='auto')",
                f"read_json({path}, format='auto', sample_size=-1)",
                dest,
                fmt,
            )
        except IngestError as e:
            raise _json_line(src, e) from e
    if fmt == "parquet":
        import pyarrow as pa  # only Parquet and Arrow inputs need it: keeps the CLI quick
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(src).names
        except (pa.ArrowException, OSError) as e:
            raise IngestError(
                f"This Parquet file is damaged or truncated: {e}",
                title="Could not read this PARQUET file",
            ) from e
        return _copy(con, f"read_parquet({path})", dest, {}, source_names=names)
    if fmt == "xlsx":
        load_extension(con, "excel")
        return _with_fallback(
            con,
            f"read_xlsx({path}, header=true)",
            f"read_xlsx({path}, header=true, all_varchar=true)",
            dest,
            fmt,
        )
    reader = _arrow_reader(fmt, src)
    con.register("_ingest_arrow", reader)
    return _copy(con, "_ingest_arrow", dest, {}, source_names=reader.schema.names)


def _with_fallback(
    con: duckdb.DuckDBPyConnection, relation: str, fallback: str, dest: Path, fmt: str
) -> Converted:
    """Typed read; if a value past the sniffed sample does not fit, type from the whole file."""
    for rel in (relation, fallback):
        wide = {c for c, t in _describe(con, rel) if t in ("HUGEINT", "UHUGEINT")}
        exact: set[str] = set()
        while True:
            casts = {c: "WIDE" if c in exact else "NARROW" for c in wide}
            try:
                return _copy(con, rel, dest, {}, casts)
            except _TypeMismatch as e:
                if e.column not in wide or e.column in exact:
                    break
                exact.add(e.column)
    raise IngestError(
        "Some values do not fit the type DuckDB inferred for their column, even after reading "
        "the whole file.",
        title=f"Could not read this {fmt.upper()} file",
    )


def _convert_csv(con: duckdb.DuckDBPyConnection, src: Path, dest: Path) -> Converted:
    opts, details, sniffed = _csv_options(con, src)
    try:
        return _convert_csv_with(con, src, dest, opts, details, sniffed)
    except IngestError as e:
        m = re.match(r"Line (\d+)\b", e.msg)
        if e.title != "Ragged rows" or not m:
            raise
        line = _physical_line(src, opts, int(m.group(1)))
        raise IngestError(f"Line {line}" + e.msg[m.end() :], title=e.title) from e


def _json_line(src: Path, e: IngestError) -> IngestError:
    """DuckDB names the line after a bad NDJSON line; find the line json.loads refuses."""
    m = re.search(r"\bin line (\d+)", e.msg)
    if not m:
        return e
    with open(src, encoding="utf-8-sig", errors="replace") as f:
        if f.read(HEAD).lstrip().startswith("["):
            return e  # one JSON document: its line numbers are DuckDB's to give
        f.seek(0)
        for i, text in enumerate(f, start=1):
            if i > _MAX_LINE_LOOKUP:
                break
            try:
                if text.strip():
                    json.loads(text)
            except ValueError:
                return IngestError(e.msg[: m.start()] + f"in line {i}" + e.msg[m.end() :], e.title)
    return e


# Past this many records the exact line costs more than it is worth on an error path.
_MAX_LINE_LOOKUP = 2_000_000


def _physical_line(src: Path, opts: dict[str, str], record: int) -> int:
    """DuckDB counts records; a quoted field with line breaks makes that differ from lines."""
    if record > _MAX_LINE_LOOKUP:
        return record
    delim = opts["delim"][1:-1].replace("''", "'") or ","
    quote = opts["quote"][1:-1].replace("''", "'") or '"'
    with open(src, encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=delim, quotechar=quote)
        before = 0
        for i, _ in enumerate(reader, start=1):
            if i == record:
                return before + 1
            before = reader.line_num
    return record


def _convert_csv_with(
    con: duckdb.DuckDBPyConnection,
    src: Path,
    dest: Path,
    opts: dict[str, str],
    details: dict[str, str],
    sniffed: list[str] | None,
) -> Converted:
    path = quote_literal(str(src))
    header = _python_header(src, opts)
    if sniffed is None or len(sniffed) != len(header):
        return _convert_csv_by_name(con, src, dest, opts, details, header)
    # Types as sniffed, pinned by position: DuckDB reads without sniffing again, and its
    # renaming of duplicate or blank headers does not matter (the select renames).
    names = [f"c{i}" for i in range(len(sniffed))]
    typed = dict(zip(names, sniffed, strict=True))
    numeric = [n for n, t in typed.items() if t in ("BIGINT", "DOUBLE")]
    digits = _sample_digits(con, path, opts, names, numeric)
    long = {n for n, d in digits.items() if d > _MAX_DOUBLE_DIGITS}
    # Long numbers: DOUBLE would round them, so they stay text; 64-bit ids are read natively
    # (the DOUBLE detour cannot hold them).
    text = {n for n in long if typed[n] == "DOUBLE"}
    for _ in range(_MAX_TYPE_RETRIES):
        casts = {n: t for n, t in typed.items() if t in _CASTS and n not in text and n not in long}
        cols = {
            n: "VARCHAR" if n in text else _CASTS[casts[n]][0] if n in casts else t
            for n, t in zip(names, sniffed, strict=True)
        }
        try:
            return _copy(con, _csv_sql(path, opts, columns=cols), dest, details, casts, header)
        except _TypeMismatch as e:  # the sniffer's sample missed a later value
            text.add(e.column)
    cols = dict.fromkeys(names, "VARCHAR")
    return _copy(con, _csv_sql(path, opts, columns=cols), dest, details, source_names=header)


def _sample_digits(
    con: duckdb.DuckDBPyConnection,
    path: str,
    opts: dict[str, str],
    names: list[str],
    columns: list[str],
) -> dict[str, int]:
    """Most significant digits per column in the sniffer's sample (the first 20,480 rows)."""
    if not columns:
        return {}
    digits = ", ".join(
        f"max(length(ltrim(regexp_replace({n}, '[^0-9]', '', 'g'), '0')))" for n in columns
    )
    text = _csv_sql(path, opts, columns=dict.fromkeys(names, "VARCHAR"))
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
    opts: dict[str, str],
    details: dict[str, str],
    header: list[str],
) -> Converted:
    """When the sniffer could not say: let DuckDB type it with the dialect pinned."""
    path = quote_literal(str(src))
    try:
        con.execute(f"DESCRIBE SELECT * FROM {_csv_sql(path, opts)}")
    except duckdb.Error:
        return _copy(con, _csv_rigid(con, src, path, opts), dest, details, source_names=header)
    rel = _csv_sql(path, {**opts, "all_varchar": "true"})
    return _copy(con, rel, dest, details, source_names=header)


def _describe(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    try:
        return [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    except duckdb.Error as e:
        raise _translate(e, relation.split("(")[0]) from e


def _select_expr(name: str, cast: str | None) -> str:
    col = quote_ident(name)
    if cast is None:
        return col
    lossy = quote_literal(f"lossy-cast:{name}")
    return _CASTS[cast][1].format(c=col, lossy=lossy)


def _copy(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    dest: Path,
    details: dict[str, str],
    casts: dict[str, str] | None = None,
    source_names: list[str] | None = None,
) -> Converted:
    names = [n for n, _ in _describe(con, relation)]
    # DuckDB renames duplicate and blank headers; the manifest keeps the file's own names.
    original = source_names if source_names and len(source_names) == len(names) else names
    safe = safe_column_names(original)
    casts = casts or {}
    select = ", ".join(
        f"{_select_expr(n, casts.get(n))} AS {quote_ident(s)}"
        for n, s in zip(names, safe, strict=True)
    )
    out = quote_literal(str(dest))
    try:
        rows = con.execute(
            # Snappy, DuckDB's default: zstd is 27% smaller but 10% slower to write, and bronze
            # is written once per file while silver/gold (zstd) are what gets read.
            f"COPY (SELECT {select} FROM {relation}) TO {out} (FORMAT parquet)"
        ).fetchall()[0][0]
        types = con.execute(f"DESCRIBE SELECT * FROM read_parquet({out})").fetchall()
    except duckdb.Error as e:
        if isinstance(e, (duckdb.ConversionException, duckdb.InvalidInputException)):
            for pattern in _MISMATCH_RES:
                if m := pattern.search(str(e)):
                    raise _TypeMismatch(m.group("col")) from e
        raise _translate(e, relation.split("(")[0]) from e
    return Converted(
        int(rows), [(t[0], t[1]) for t in types], list(zip(original, safe, strict=True)), details
    )


def _arrow_reader(fmt: Format, src: Path) -> "pa.RecordBatchReader":
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.ipc as ipc

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
) -> tuple[dict[str, str], dict[str, str], list[str] | None]:
    """Sniff once, then pin the dialect: DuckDB's sniffer may skip leading rows or drop a header.

    Returns the read options, what was detected, and the sniffed column types by position
    (None when the sniff cannot be trusted and the dialect came from Python's csv module).
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
    opts = {
        "delim": quote_literal(delim),
        "quote": quote_literal(quote),
        "escape": quote_literal(escape),
        "header": "true" if has_header else "false",
        "skip": "0",
        "strict_mode": "true",
        "allow_quoted_nulls": "false",  # "" is an empty string; only an empty field is NULL
    }
    if date_fmt:
        opts["dateformat"] = quote_literal(date_fmt)
    if ts_fmt:
        opts["timestampformat"] = quote_literal(ts_fmt)
    details = {"delimiter": delim, "quote": quote, "header": opts["header"]}
    return opts, details, [c["type"] for c in columns] if columns else None


def _csv_sql(path: str, opts: dict[str, str], columns: dict[str, str] | None = None) -> str:
    """read_csv with the pinned options; with `columns`, types are given and nothing is sniffed."""
    args = "".join(f", {k}={v}" for k, v in opts.items())
    if columns:
        body = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in columns.items())
        args = f", auto_detect=false{args}, columns={{{body}}}"
    return f"read_csv({path}{args})"


def _csv_rigid(con: duckdb.DuckDBPyConnection, src: Path, path: str, opts: dict[str, str]) -> str:
    """No sniffing at all: every column as text from the header, so errors carry a line."""
    header = _python_header(src, opts)
    rel = _csv_sql(path, opts, columns={f"c{i}": "VARCHAR" for i in range(len(header))})
    try:
        con.execute(f"SELECT count(*) FROM {rel}").fetchall()
    except duckdb.Error as e:
        raise _translate(e, "csv") from e
    return rel


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


def _python_header(src: Path, opts: dict[str, str]) -> list[str]:
    """The first record as the file spells it (DuckDB renames duplicates and blanks)."""
    delim = opts["delim"][1:-1].replace("''", "'")
    quote = opts["quote"][1:-1].replace("''", "'") or '"'
    with open(src, encoding="utf-8-sig", errors="replace", newline="") as f:
        first = next(csv.reader(f, delimiter=delim or ",", quotechar=quote), [])
    if opts["header"] == "true":
        return first
    return [f"column{i}" for i in range(len(first))]


def _translate(e: duckdb.Error, fmt: str) -> IngestError:
    """DuckDB's message without its SQL context, hints for SQL users or staging paths."""
    text = str(e).split("\n\n  file =")[0].split("Possible fixes:")[0]
    text = text.split("\n\nLINE ")[0].split("\nLINE ")[0].strip()
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
