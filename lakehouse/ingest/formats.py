"""Turn a plain (uncompressed, UTF-8) file into Parquet with DuckDB, streaming.

Column names are made safe on the way; the mapping travels back to the manifest.
"""

import html
import json
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

import duckdb

from lakehouse.duck import load_extension
from lakehouse.errors import IngestError
from lakehouse.ingest.csv_dialect import MAX_LINE_LOOKUP, convert_csv
from lakehouse.ingest.detect import HEAD, Format
from lakehouse.ingest.parquet_writer import Converted, TypeMismatch, copy_to_parquet, describe
from lakehouse.ingest.stream import CHUNK
from lakehouse.layers import quote_literal

if TYPE_CHECKING:
    import pyarrow as pa


def convert(con: duckdb.DuckDBPyConnection, fmt: Format, src: Path, dest: Path) -> Converted:
    """Write `src` as one Parquet file `dest`; IngestError says what was wrong and where."""
    path = quote_literal(str(src))
    if fmt == "csv":
        return convert_csv(con, src, dest)
    if fmt == "json":
        check_json_depth(src)
        depth = f"maximum_depth={JSON_TYPED_DEPTH}"
        try:
            return _with_fallback(
                con,
                f"read_json({path}, format='auto', {depth})",
                f"read_json({path}, format='auto', {depth}, sample_size=-1)",
                dest,
                fmt,
            )
        except IngestError as e:
            better = _json_line(src, e)
            if better is e:
                raise  # `raise e from e` would make the error its own cause: a cycle
            raise better from e
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
        return copy_to_parquet(con, f"read_parquet({path})", dest, {}, source_names=names)
    if fmt == "xlsx":
        check_formulas(src)
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
    return copy_to_parquet(con, "_ingest_arrow", dest, {}, source_names=reader.schema.names)


def _with_fallback(
    con: duckdb.DuckDBPyConnection, relation: str, fallback: str, dest: Path, fmt: str
) -> Converted:
    """Typed read; if a value past the sniffed sample does not fit, type from the whole file."""
    for rel in (relation, fallback):
        wide = {c for c, t in describe(con, rel) if t in ("HUGEINT", "UHUGEINT")}
        exact: set[str] = set()
        while True:
            casts = {c: "WIDE" if c in exact else "NARROW" for c in wide}
            try:
                return copy_to_parquet(con, rel, dest, {}, casts)
            except TypeMismatch as e:
                if e.column not in wide or e.column in exact:
                    break
                exact.add(e.column)
    raise IngestError(
        "Some values do not fit the type DuckDB inferred for their column, even after reading "
        "the whole file.",
        title=f"Could not read this {fmt.upper()} file",
    )


# DuckDB types nested JSON in time that grows with the cube of the depth
# and crashes the process (a segmentation fault) from about 15,000 levels; Arrow, which every
# query result travels as, refuses structs nested past 64. Levels below JSON_TYPED_DEPTH are
# kept as JSON text; files deeper than MAX_JSON_DEPTH are refused (the nesting limit Jackson
# and simdjson apply too). Real data nests a few levels.
JSON_TYPED_DEPTH = 32
MAX_JSON_DEPTH = 1000
_TO_PARENS = bytes.maketrans(b"[{]}", b"(())")
_NOT_SYNTAX = bytes(b for b in range(256) if b not in b'[]{}"')


def check_json_depth(src: Path, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit`, reading the file once at C speed.

    Escapes and everything but quotes and brackets go first, then strings; matched brackets
    are removed pass by pass, and a chunk takes as many passes as it nests deep.
    """
    depth, in_string, carry = 0, False, b""
    with open(src, "rb") as f:
        while chunk := f.read(CHUNK):
            # Escaped backslashes first: in `\\"` the quote ends the string.
            chunk = (carry + chunk).replace(b"\\\\", b"").replace(b'\\"', b"")
            chunk, carry = (chunk[:-1], b"\\") if chunk.endswith(b"\\") else (chunk, b"")
            parts = chunk.translate(None, _NOT_SYNTAX).split(b'"')
            outside = b"".join(parts[1::2] if in_string else parts[0::2])
            in_string ^= len(parts) % 2 == 0
            brackets = outside.translate(_TO_PARENS)
            passes = 0
            # Only a chunk that could pass the limit is looked at closely; a run of opening
            # brackets that long settles it at once.
            if depth + brackets.count(b"(") > limit and b"(" * (limit + 1) not in brackets:
                while b"()" in brackets and passes <= limit:
                    brackets = brackets.replace(b"()", b"")
                    passes += 1
            closes = brackets.count(b")")
            opens = len(brackets) - closes
            if depth + opens + passes > limit:
                raise IngestError(
                    f"The JSON is nested more than {limit:,} levels deep; {limit:,} is the "
                    "most it may be. Flatten the deepest parts, or store them as text.",
                    title="JSON nested too deeply",
                )
            depth = max(depth + opens - closes, 0)


# A cell holding a formula and no result: `<c r="D4"><f>B4*C4</f></c>` (any namespace prefix).
_UNCACHED_FORMULA = re.compile(
    rb'<(?:\w+:)?c\b[^>]*?\br="([A-Z]+[0-9]+)"[^>]*>\s*'
    rb"<(?:\w+:)?f\b[^>]*?(?:/>|>([^<]*)</(?:\w+:)?f>)\s*</(?:\w+:)?c>"
)


def check_formulas(src: Path) -> None:
    """Refuse a workbook whose first sheet has formulas without a saved result.

    Excel and LibreOffice save each formula's result beside it, and that is what DuckDB reads;
    files written by libraries (openpyxl, many exporters) often hold the formula alone, and
    DuckDB would then read an empty cell where the user sees a number.
    """
    sheet = _first_sheet(src)
    if sheet is None:
        return  # not a workbook DuckDB can read either: it says why
    with zipfile.ZipFile(src) as z, z.open(sheet) as f:
        tail = b""
        while chunk := f.read(CHUNK):
            data = tail + chunk
            if m := _UNCACHED_FORMULA.search(data):
                cell, formula = m.group(1).decode(), (m.group(2) or b"").decode(errors="replace")
                shown = f" (={html.unescape(formula)[:80]})" if formula else ""
                raise IngestError(
                    f"Cell {cell} holds a formula{shown} whose result was never saved in the "
                    "file, so it would arrive empty. Open the file in Excel or LibreOffice and "
                    "save it again (that stores every result), or export it as CSV.",
                    title="Formula without a saved result",
                )
            tail = data[-HEAD:]


def _first_sheet(src: Path) -> str | None:
    """The member holding the workbook's first sheet: the one DuckDB's read_xlsx reads."""
    try:
        with zipfile.ZipFile(src) as z:
            book = ElementTree.fromstring(z.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
            first = next(e for e in book.iter() if e.tag.endswith("}sheet"))
            rid = next(v for k, v in first.attrib.items() if k.endswith("}id"))
            target = next(e.get("Target", "") for e in rels.iter() if e.get("Id") == rid)
            member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            z.getinfo(member)
            return member
    except (zipfile.BadZipFile, KeyError, StopIteration, ElementTree.ParseError):
        return None


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
            if i > MAX_LINE_LOOKUP:
                break
            try:
                if text.strip():
                    json.loads(text)
            except ValueError:
                return IngestError(e.msg[: m.start()] + f"in line {i}" + e.msg[m.end() :], e.title)
    return e


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
