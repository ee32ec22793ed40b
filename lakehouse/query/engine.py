"""Untrusted SQL (playground, `ratatouille sql`): guarded, then run by a pool of worker processes.

A crash, a runaway query, a worker past its memory ceiling (`lakehouse.query.limits`) or a poisoned
DuckDB instance costs one worker, which is replaced; the calling process (the Streamlit server)
never runs user SQL itself, and accepts results only up to the byte cap.
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse.errors import LakehouseError, QueryError
from lakehouse.query.guard import CheckedQuery, TableNotAllowed, check_query
from lakehouse.query.limits import MB, memory_ceiling_mb
from lakehouse.query.process import (
    KILL_GRACE_S,
    MAX_HEADER_BYTES,
    OverMemory,
    TooBig,
    Worker,
    WorkerDied,
    max_body_bytes,
)
from lakehouse.query.results import ExportResult, QueryResult
from lakehouse.query.sandbox import ExportFormat
from lakehouse.settings import Settings
from lakehouse.storage import open_storage
from lakehouse.tables import catalog


class QueryEngine:
    """Run untrusted SQL on worker processes: `query` (capped rows), `export` (all rows)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: queue.LifoQueue[Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._workers: set[Worker | _Placeholder] = set()
        self._closed = False
        atexit.register(_close_ref, weakref.ref(self))

    # -- the pool -------------------------------------------------------------------------
    def _acquire(self) -> Worker:
        while True:
            with self._lock:
                if self._closed:
                    raise QueryError(
                        "The query engine was closed.", title="Query engine unavailable"
                    )
                with contextlib.suppress(queue.Empty):
                    return self._idle.get_nowait()
                if len(self._workers) < self.settings.query_workers:
                    slot = _Placeholder()
                    self._workers.add(slot)
                    break
            # All busy: wait for one to come back, or for a dead one's slot to free up.
            with contextlib.suppress(queue.Empty):
                return self._idle.get(timeout=0.2)
        try:
            worker = Worker(self.settings)
        finally:
            with self._lock:
                self._workers.discard(slot)
        with self._lock:
            self._workers.add(worker)
        return worker

    def _release(self, worker: Worker) -> None:
        if worker.alive() and not self._closed:
            self._idle.put(worker)
            return
        with self._lock:
            self._workers.discard(worker)
        worker.kill()

    def _call(
        self, req: dict[str, Any], time_limit_s: float, max_body: int = MAX_HEADER_BYTES
    ) -> tuple[dict[str, Any], bytes | None]:
        worker = self._acquire()
        try:
            header, body = worker.request(
                req, time.monotonic() + time_limit_s + KILL_GRACE_S, max_body
            )
        except OverMemory as e:
            worker.kill()
            ceiling = memory_ceiling_mb(self.settings)
            raise QueryError(
                f"The query took its worker past the {ceiling:,} MB memory ceiling "
                f"(RATATOUILLE_QUERY_WORKER_MAX_MB; it reached {e}), so the worker was stopped "
                "and replaced. Filter or aggregate earlier, avoid huge strings or lists, or "
                "raise the setting.",
                title="Out of memory",
            ) from e
        except TooBig as e:
            worker.kill()
            raise QueryError(
                f"A query worker sent a {e} answer, more than the result cap allows "
                "(RATATOUILLE_QUERY_MAX_RESULT_MB); it was refused and the worker replaced.",
                title="Result too large",
            ) from e
        except TimeoutError as e:
            worker.kill()
            raise QueryError(
                f"The query ran for more than {time_limit_s:g} s and did not stop when asked, so "
                "its worker was replaced. Filter, aggregate or add a LIMIT.",
                title="Time limit reached",
            ) from e
        except WorkerDied as e:
            worker.kill()
            raise QueryError(
                f"The process running this query stopped ({e}); it has been replaced. If it "
                "happens again, the query probably needs more memory than this machine has.",
                title="Query worker stopped",
            ) from e
        else:
            if header.get("retire"):
                worker.stop()
        finally:
            self._release(worker)
        if not header["ok"]:
            raise QueryError(header["msg"], title=header["title"])
        return header, body

    @property
    def worker_pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._workers if isinstance(w, Worker) and w.alive())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = [w for w in self._workers if isinstance(w, Worker)]
            self._workers.clear()
        for w in workers:
            w.stop()

    def __enter__(self) -> QueryEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries --------------------------------------------------------------------------
    def _check(self, sql: str) -> CheckedQuery:
        try:
            return check_query(sql, self.settings.query_layers)
        except TableNotAllowed as e:
            name = e.table.lower()
            if "." in name or "/" in name:
                raise
            try:
                tables = catalog.list_tables(open_storage(self.settings))
            except LakehouseError:
                raise e from None
            hints = [
                t.qualified_name
                for t in tables
                if t.name.lower() == name and t.layer in self.settings.query_layers
            ]
            if not hints:
                raise
            raise QueryError(f"{e.msg} Did you mean {' or '.join(hints)}?", title=e.title) from e

    def query(
        self, sql: str, *, max_rows: int | None = None, time_limit_s: float | None = None
    ) -> QueryResult:
        """The first `max_rows` (default: the row cap) rows of an untrusted query."""
        checked = self._check(sql)
        cap = max_rows or self.settings.query_row_cap
        limit = time_limit_s or self.settings.query_time_limit_s
        max_bytes = self.settings.query_max_result_mb * MB
        header, body = self._call(
            {
                "op": "query",
                "sql": checked.sql,
                "tables": checked.tables,
                "max_rows": cap,
                "max_bytes": max_bytes,
                "time_limit_s": limit,
            },
            limit,
            max_body_bytes(max_bytes),
        )
        assert body is not None
        table = pa.ipc.open_stream(body).read_all()
        return QueryResult(
            sql=checked.sql,
            table=table,
            columns=[(n, t) for n, t in header["columns"]],
            truncated=header["truncated"],
            elapsed_s=header["elapsed_s"],
            row_cap=cap,
            truncated_reason=header.get("truncated_reason"),
            max_result_bytes=max_bytes,
        )

    def export(
        self,
        sql: str,
        path: Path | str,
        fmt: ExportFormat | None = None,
        *,
        time_limit_s: float | None = None,
    ) -> ExportResult:
        """Every row of an untrusted query to a CSV or Parquet file, streamed."""
        path = Path(path).resolve()
        fmt = fmt or ("parquet" if path.suffix.lower() == ".parquet" else "csv")
        if fmt not in ("csv", "parquet"):
            raise QueryError(f"Export as csv or parquet, not {fmt!r}.", title="Unknown format")
        if not path.parent.is_dir():
            raise QueryError(f"{path.parent} is not a folder.", title="Cannot write the export")
        checked = self._check(sql)
        if checked.explain:
            raise QueryError("Export a SELECT, not an EXPLAIN.", title="Nothing to export")
        limit = time_limit_s or self.settings.query_export_time_limit_s
        header, _ = self._call(
            {
                "op": "export",
                "sql": checked.sql,
                "tables": checked.tables,
                "path": str(path),
                "format": fmt,
                "time_limit_s": limit,
            },
            limit,
        )
        return ExportResult(path, fmt, header["rows"], header["bytes"], header["elapsed_s"])


class _Placeholder:
    """Holds a pool slot while a worker starts, so concurrent callers do not overshoot."""

    pid = 0

    def alive(self) -> bool:
        return False


def _close_ref(ref: weakref.ref[QueryEngine]) -> None:
    engine = ref()
    if engine is not None:
        engine.close()
