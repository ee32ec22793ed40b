"""Turn a plain (uncompressed, UTF-8) file into Parquet with DuckDB, streaming.

Column names are made safe on the way; the mapping travels back to the manifest.
"""

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from lakehouse.conversion import Converted, TypeMismatch, copy_to_parquet, describe
from lakehouse.csvfile import MAX_LINE_LOOKUP, convert_csv
from lakehouse.duck import load_extension
from lakehouse.errors import IngestError
from lakehouse.layers import quote_literal
from lakehouse.sniff import HEAD, Format

if TYPE_CHECKING:
    import pyarrow as pa


def convert(con: duckdb.DuckDBPyConnection, fmt: Format, src: Path, dest: Path) -> Converted:
    """Write `src` as one Parquet file `dest`; IngestError says what was wrong and where."""
    path = quote_literal(str(src))
    if fmt == "csv":
        return convert_csv(con, src, dest)
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
        return copy_to_parquet(con, f"read_parquet({path})", dest, {}, source_names=names)
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
