"""The locked DuckDB connection untrusted queries run on, inside a query worker process.

Second line of defence after the statement guard: the connection can read the query layers'
files and nothing else (`allowed_directories` is set before `enable_external_access=false`,
then `lock_configuration`), it cannot load or install extensions, and Python objects are not
visible to it. On S3 it holds the read-only query credentials when they are configured.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lakehouse import duck
from lakehouse.errors import QueryError
from lakehouse.layers import Layer, quote_ident
from lakehouse.settings import Settings
from lakehouse.storage import open_storage
from lakehouse.tables import catalog

ExportFormat = Literal["csv", "parquet"]
# OWASP's CSV-injection rule: a cell starting with = + - @ tab or CR is a formula to a
# spreadsheet, unless it is just a number ("-5" is not a formula and stays as it is).
_FORMULA_SAFE = (
    "CASE WHEN left({col}, 1) IN ('=', '+', '-', '@', chr(9), chr(13))"
    " AND NOT regexp_full_match({col}, '[+-]?[0-9]*[.]?[0-9]+([eE][+-]?[0-9]+)?')"
    " THEN '''' || {col} ELSE {col} END"
)
BATCH_ROWS = 65_536


def query_settings(settings: Settings) -> Settings:
    """The settings a worker runs with: the read-only S3 key instead of the lake's, if set."""
    if settings.s3_query_access_key and settings.s3_query_secret_key:
        return settings.replace(
            s3_access_key=settings.s3_query_access_key,
            s3_secret_key=settings.s3_query_secret_key,
        )
    return settings


def duckdb_config(settings: Settings, spill: Path, *, file_cache: bool = True) -> duck.DuckConfig:
    """A query worker's DuckDB: its memory, spill and threads; no extension or Python lookups."""
    threads = settings.query_threads or settings.duckdb_threads
    return duck.base_config(settings.query_memory_limit, spill, threads) | {
        "python_enable_replacements": False,  # no scans of the worker's Python variables
        "max_temp_directory_size": settings.query_temp_limit,
        "enable_external_file_cache": file_cache,
    }


@dataclass(frozen=True)
class Rows:
    table: pa.Table
    columns: list[tuple[str, str]]
    truncated: bool
    elapsed_s: float
    truncated_reason: Literal["rows", "bytes"] | None = None  # which cap cut the result


@dataclass(frozen=True)
class Exported:
    rows: int
    bytes: int
    elapsed_s: float


class Sandbox:
    """One locked in-memory DuckDB with a view per table of the query layers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = query_settings(settings)
        self.layers = tuple(Layer(x) for x in settings.query_layers)
        self.storage = open_storage(self.settings)
        self.spill = self.settings.state_dir.resolve() / "query_tmp" / uuid.uuid4().hex[:12]
        self.spill.mkdir(parents=True, exist_ok=True)
        self.con = self._connect()
        self._export_con: duckdb.DuckDBPyConnection | None = None
        self._views: dict[duckdb.DuckDBPyConnection, dict[tuple[str, str], str]] = {}

    @property
    def export_con(self) -> duckdb.DuckDBPyConnection:
        """A second instance for exports: without the S3 file cache, whose copy of every byte
        read would otherwise grow with the export."""
        if self._export_con is None:
            self._export_con = self._connect(file_cache=False)
        return self._export_con

    def _connect(self, *, file_cache: bool = True) -> duckdb.DuckDBPyConnection:
        s = self.settings
        config = duckdb_config(s, self.spill, file_cache=file_cache)
        con = duckdb.connect(":memory:", config=config)
        con.execute("SET enable_progress_bar_print = false")
        if s.storage == "s3":
            duck.load_extension(con, "httpfs")
            con.execute(duck.s3_secret_sql(s))
        for layer in self.layers:
            con.execute(f"CREATE SCHEMA {layer.value}")
        duck.lock(
            con, [self.storage.uri(f"{layer.value}/_").removesuffix("_") for layer in self.layers]
        )
        return con

    def refresh_views(
        self,
        con: duckdb.DuckDBPyConnection | None = None,
        tables: list[tuple[str, str]] | None = None,
    ) -> None:
        """Point views at their tables' current snapshots.

        With `tables` (what the guard saw the query read), only those are looked up: one read
        each, side by side. A table that is not there means a full refresh, so DuckDB's error
        can suggest the tables that do exist.
        """
        con = con or self.con
        views = self._views.setdefault(con, {})
        if tables is not None:
            found = catalog.find_tables(self.storage, tables)
            if all(found.values()):
                self._apply(con, views, {k: t.scan_sql for k, t in found.items() if t})
                return
        seen = {
            (t.layer, t.name): t.scan_sql
            for t in catalog.list_tables(self.storage)
            if t.layer in self.settings.query_layers
        }
        for key in views.keys() - seen.keys():
            con.execute(f"DROP VIEW IF EXISTS {key[0]}.{quote_ident(key[1])}")
            del views[key]
        self._apply(con, views, seen)

    @staticmethod
    def _apply(
        con: duckdb.DuckDBPyConnection,
        views: dict[tuple[str, str], str],
        wanted: dict[tuple[str, str], str],
    ) -> None:
        for key, scan in wanted.items():
            if views.get(key) != scan:
                duck.create_view(con, key[0], key[1], scan)
                views[key] = scan

    @contextmanager
    def _time_limit(
        self, seconds: float, con: duckdb.DuckDBPyConnection | None = None
    ) -> Iterator[None]:
        timer = threading.Timer(seconds, (con or self.con).interrupt)
        timer.daemon = True
        timer.start()
        try:
            yield
        except (duckdb.Error, pa.ArrowException, OSError) as e:
            # Errors met while streaming arrive through Arrow (as OSError or ArrowException),
            # as text with DuckDB's prefix; other OSErrors are about the export file.
            if isinstance(e, OSError) and not _DUCKDB_MESSAGE.match(str(e)):
                raise QueryError(str(e), title="Could not write the export") from e
            if isinstance(e, duckdb.InterruptException) or str(e).startswith("INTERRUPT"):
                raise QueryError(
                    f"The query ran for more than {seconds:g} s and was stopped. Filter, "
                    "aggregate or add a LIMIT; the limit is RATATOUILLE_QUERY_TIME_LIMIT_S.",
                    title="Time limit reached",
                ) from e
            raise query_error(e, self.settings) from e
        finally:
            timer.cancel()

    def run(
        self,
        sql: str,
        max_rows: int,
        time_limit_s: float,
        tables: list[tuple[str, str]] | None = None,
        *,
        max_bytes: int | None = None,
    ) -> Rows:
        """The first rows that fit in max_rows and max_bytes (Arrow size); `truncated` says
        whether there were more, `truncated_reason` which cap stopped them."""
        self.refresh_views(self.con, tables)
        start = time.perf_counter()
        with self._time_limit(time_limit_s):
            cur = self.con.execute(sql)
            columns = [(d[0], str(d[1])) for d in cur.description or []]
            reader = cur.to_arrow_reader(min(BATCH_ROWS, max_rows + 1))
            batches, reason = _take(reader, max_rows, max_bytes)
            table = pa.Table.from_batches(batches, schema=reader.schema)
        self.con.execute("SELECT 1")  # drops the rest of a streaming result
        return Rows(table, columns, reason is not None, time.perf_counter() - start, reason)

    def export(
        self,
        sql: str,
        path: Path,
        fmt: ExportFormat,
        time_limit_s: float,
        tables: list[tuple[str, str]] | None = None,
    ) -> Exported:
        """Stream the whole result to path (written beside it, then renamed into place)."""
        con = self.export_con
        self.refresh_views(con, tables)
        start = time.perf_counter()
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        rows = 0
        try:
            with self._time_limit(time_limit_s, con):
                if fmt == "csv":
                    sql = self._flat(con, sql, safe=self.settings.export_csv_safe)
                reader = con.execute(sql).to_arrow_reader(BATCH_ROWS)
                writer: pacsv.CSVWriter | pq.ParquetWriter
                if fmt == "csv":
                    writer = pacsv.CSVWriter(tmp, reader.schema)
                else:
                    writer = pq.ParquetWriter(tmp, reader.schema, compression="zstd")
                with writer:
                    for batch in reader:
                        writer.write_batch(batch)
                        rows += batch.num_rows
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        return Exported(rows, path.stat().st_size, time.perf_counter() - start)

    @staticmethod
    def _flat(con: duckdb.DuckDBPyConnection, sql: str, *, safe: bool = False) -> str:
        """CSV has no nested values: lists, structs and maps become their text form.

        `safe`: text cells a spreadsheet would run as a formula get a leading `'` (in DuckDB,
        so the export still streams); numeric columns are left alone.
        """
        cur = con.execute(f"SELECT * FROM ({sql}) LIMIT 0")
        replace: dict[str, str] = {}
        for name, dtype, *_ in cur.description or []:
            col, kind = quote_ident(name), str(dtype)
            if kind.endswith("]") or kind.startswith(("STRUCT", "MAP", "UNION")):
                replace[name] = f"CAST({col} AS VARCHAR)"  # text form starts with [ or {
            elif safe and (kind in ("VARCHAR", "JSON") or kind.startswith("ENUM")):
                replace[name] = _FORMULA_SAFE.format(col=f"CAST({col} AS VARCHAR)")
        if not replace:
            return sql
        exprs = ", ".join(f"{e} AS {quote_ident(c)}" for c, e in replace.items())
        return f"SELECT * REPLACE ({exprs}) FROM ({sql})"

    def close(self) -> None:
        self.con.close()
        if self._export_con is not None:
            self._export_con.close()
        shutil.rmtree(self.spill, ignore_errors=True)


def _take(
    reader: pa.RecordBatchReader, max_rows: int, max_bytes: int | None
) -> tuple[list[pa.RecordBatch], Literal["rows", "bytes"] | None]:
    """Batches up to max_rows rows and max_bytes bytes, the last one sliced to fit; and which
    cap stopped them (None: the result ended first)."""
    batches: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in reader:
        reason: Literal["rows", "bytes"] | None = None
        if batch.num_rows > max_rows - rows:
            batch, reason = batch.slice(0, max_rows - rows), "rows"
        if max_bytes is not None and size + batch.nbytes > max_bytes:
            batch, reason = batch.slice(0, _rows_within(batch, max_bytes - size)), "bytes"
        batches.append(batch)
        rows, size = rows + batch.num_rows, size + batch.nbytes
        if reason:
            return batches, reason
    return batches, None


def _rows_within(batch: pa.RecordBatch, budget: int) -> int:
    """How many leading rows of batch fit in budget bytes (a slice's nbytes counts only the
    bytes its rows use, and grows with them)."""
    lo, hi = 0, batch.num_rows  # slice(0, lo) fits; slice(0, hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if batch.slice(0, mid).nbytes <= budget:
            lo = mid
        else:
            hi = mid
    return lo


_DUCKDB_MESSAGE = re.compile(r"^[A-Z][A-Za-z ]* Error: ")
_PREFIXES = {
    "Out of Memory Error": duckdb.OutOfMemoryException,
    "Permission Error": duckdb.PermissionException,
    "Catalog Error": duckdb.CatalogException,
    "Parser Error": duckdb.ParserException,
    "IO Error": duckdb.IOException,
    "HTTP Error": duckdb.HTTPException,
}


_OFFLOAD = re.compile(r"failed to offload data block .*?\(([\d.]+ ?\w+)/([\d.]+ ?\w+) used\)")
_SIZE = re.compile(r"([\d.]+)\s*([KMGT]i?B|bytes?|B)", re.I)
_UNITS = {"b": 1, "byte": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _size(text: str) -> float | None:
    m = _SIZE.fullmatch(text.strip())
    return float(m[1]) * _UNITS[m[2].lower()] if m else None


def _spill_disk_full(text: str, settings: Settings) -> str | None:
    """The spill cap DuckDB hit, when that was the disk's free space rather than our limit.
    (DuckDB caps spilling at the free disk space and calls it out of memory either way.)"""
    m = _OFFLOAD.search(text)
    if not m:
        return None
    cap, limit = _size(m[2]), _size(settings.query_temp_limit)
    if cap is None or limit is None or cap >= 0.9 * limit:
        return None
    return m[2]


def query_error(e: Exception, settings: Settings) -> QueryError:
    """DuckDB's exception as a QueryError with a title a person can act on."""
    text = str(e)
    kind = type(e)
    if not isinstance(e, duckdb.Error):
        kind = next((k for p, k in _PREFIXES.items() if text.startswith(p)), kind)
    first = " ".join(duck.without_line_context(text).split())
    for prefix in ("Catalog Error: ", "Binder Error: ", "Parser Error: ", "Conversion Error: "):
        first = first.removeprefix(prefix)
    if issubclass(kind, duckdb.OutOfMemoryException):
        disk = _spill_disk_full(text, settings)
        if disk:
            return QueryError(
                f"The query needed more than {settings.query_memory_limit} of memory, and the "
                f"disk under {settings.state_dir} had only {disk} free to spill the rest. Free "
                "disk space, point RATATOUILLE_STATE_DIR at a bigger disk, or filter or "
                "aggregate earlier.",
                title="Disk full",
            )
        said = first.split("Possible solutions:")[0].removeprefix("Out of Memory Error: ").strip()
        return QueryError(
            f"The query needed more than {settings.query_memory_limit} of memory and "
            f"{settings.query_temp_limit} of spill space. Filter or aggregate earlier, or raise "
            f"RATATOUILLE_QUERY_MEMORY_LIMIT / RATATOUILLE_QUERY_TEMP_LIMIT. (DuckDB: {said})",
            title="Out of memory",
        )
    if issubclass(kind, duckdb.PermissionException):
        return QueryError(
            "Queries here can read the lake's tables only, not files, URLs or settings.",
            title="Access denied",
        )
    if issubclass(kind, duckdb.CatalogException):
        return QueryError(first, title="Unknown table or column")
    if issubclass(kind, duckdb.ParserException):
        return QueryError(first, title="Syntax error")
    if issubclass(kind, duckdb.IOException | duckdb.HTTPException):
        return QueryError(first, title="Could not read the lake")
    return QueryError(first, title="The query failed")
