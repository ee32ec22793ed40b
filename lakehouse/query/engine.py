"""Untrusted SQL (playground, `ratatouille sql`): guarded, then run by a pool of worker processes.

A crash, a runaway query, a worker past its memory ceiling (`lakehouse.query.limits`) or a poisoned
DuckDB instance costs one worker, which is replaced; the calling process (the Streamlit server)
never runs user SQL itself, and accepts results only up to the byte cap.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import selectors
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import SecretStr

from lakehouse.errors import LakehouseError, QueryError
from lakehouse.query.guard import CheckedQuery, TableNotAllowed, check_query
from lakehouse.query.limits import MB, memory_ceiling_mb
from lakehouse.query.sandbox import ExportFormat
from lakehouse.settings import Settings
from lakehouse.storage import open_storage
from lakehouse.tables import catalog

# After the time limit the worker interrupts the query itself; this is how long it gets to
# answer before it is killed.
KILL_GRACE_S = 5.0
START_TIMEOUT_S = 60.0
# How often the engine reads a busy worker's resident memory (its ceiling is enforced here, by
# SIGKILL); measured, workers got 10-40 MB past a 600 MB ceiling before they died.
RSS_SAMPLE_S = 0.05
# Frames the app accepts from a worker: headers are small; a result may exceed its cap by the
# Arrow stream's framing, never by more.
MAX_HEADER_BYTES = 16 * MB


def max_body_bytes(result_cap: int) -> int:
    return result_cap + result_cap // 8 + 4 * MB


@dataclass(frozen=True)
class QueryResult:
    sql: str
    table: pa.Table  # at most row_cap rows
    columns: list[tuple[str, str]]  # name, DuckDB type
    truncated: bool  # the query returned more than fits in row_cap rows and the byte cap
    elapsed_s: float
    row_cap: int
    truncated_reason: Literal["rows", "bytes"] | None = None  # which cap cut it
    max_result_bytes: int = 0

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def truncation_note(self) -> str | None:
        """What a person should read about the cut, or None when nothing was cut."""
        if not self.truncated:
            return None
        if self.truncated_reason != "bytes":
            return f"Showing the first {self.row_cap:,} rows; the query returns more."
        cap = f"{self.max_result_bytes / MB:,.0f} MB"
        if not self.rows:
            return (
                f"The first row alone is larger than the {cap} result cap, so no rows are "
                "shown. Export the result, or select fewer or shorter columns."
            )
        return (
            f"Showing the first {self.rows:,} rows, which fill the {cap} result cap; the query "
            "returns more."
        )


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: ExportFormat
    rows: int
    bytes: int
    elapsed_s: float


class _Dead(Exception):
    pass


class _OverMemory(Exception):
    pass


class _TooBig(Exception):
    pass


class _Worker:
    def __init__(self, settings: Settings) -> None:
        self.max_rss = memory_ceiling_mb(settings) * MB
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lakehouse.query.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C in the terminal is the app's to handle
        )
        self._buf = bytearray()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            hello, _ = self.request(
                {"settings": _plain(settings)}, time.monotonic() + START_TIMEOUT_S
            )
        except (_Dead, TimeoutError) as e:
            self.kill()
            raise QueryError(
                f"A query worker did not start ({e}).", title="Query engine unavailable"
            ) from e
        except _OverMemory as e:
            self.kill()
            raise QueryError(
                f"A query worker needed {e} just to start, more than its memory ceiling "
                f"({self.max_rss // MB:,} MB). Raise RATATOUILLE_QUERY_WORKER_MAX_MB.",
                title="Query engine unavailable",
            ) from e
        if not hello["ok"]:
            self.kill()
            raise QueryError(hello["msg"], title=hello["title"])
        self.pid: int = hello["pid"]

    def request(
        self, req: dict[str, Any], deadline: float, max_body: int = MAX_HEADER_BYTES
    ) -> tuple[dict[str, Any], bytes | None]:
        """Send req; its answer, while holding the worker to its memory ceiling and the
        answer to max_body bytes (raising _OverMemory / _TooBig, the worker left running)."""
        data = json.dumps(req).encode()
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(len(data).to_bytes(8, "big") + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise _Dead("the worker is gone") from e
        header = json.loads(self._frame(deadline, MAX_HEADER_BYTES))
        body = self._frame(deadline, max_body) if header.pop("body") else None
        return header, body

    def rss(self) -> int | None:
        """The worker's resident memory in bytes (None where /proc cannot tell)."""
        try:
            with open(f"/proc/{self.proc.pid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return None

    def _frame(self, deadline: float, max_len: int) -> bytes:
        while True:
            if len(self._buf) >= 8:
                n = int.from_bytes(self._buf[:8], "big")
                if n > max_len:  # refused from its length alone, before it is read
                    raise _TooBig(f"{n / MB:,.1f} MB")
                if len(self._buf) >= 8 + n:
                    frame = bytes(self._buf[8 : 8 + n])
                    del self._buf[: 8 + n]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer in time")
            ready = self._sel.select(min(left, RSS_SAMPLE_S))
            rss = self.rss()
            if rss is not None and rss > self.max_rss:
                raise _OverMemory(f"{rss / MB:,.0f} MB")
            if not ready:
                continue
            assert self.proc.stdout is not None
            try:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise _Dead(f"the worker exited ({_exit_reason(self.proc)})")
            self._buf += chunk

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        self._sel.close()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()

    def stop(self) -> None:
        """Close stdin (the worker exits on EOF); kill it if it does not."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        self.kill()


def _plain(settings: Settings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in settings:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = str(value.resolve())  # the worker may not share our idea of "."
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def _exit_reason(proc: subprocess.Popen[bytes]) -> str:
    try:
        code = proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        return "closed its output"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class QueryEngine:
    """Run untrusted SQL on worker processes: `query` (capped rows), `export` (all rows)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._workers: set[_Worker | _Placeholder] = set()
        self._closed = False
        atexit.register(_close_ref, weakref.ref(self))

    # -- the pool -------------------------------------------------------------------------
    def _acquire(self) -> _Worker:
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
            worker = _Worker(self.settings)
        finally:
            with self._lock:
                self._workers.discard(slot)
        with self._lock:
            self._workers.add(worker)
        return worker

    def _release(self, worker: _Worker) -> None:
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
        except _OverMemory as e:
            worker.kill()
            ceiling = memory_ceiling_mb(self.settings)
            raise QueryError(
                f"The query took its worker past the {ceiling:,} MB memory ceiling "
                f"(RATATOUILLE_QUERY_WORKER_MAX_MB; it reached {e}), so the worker was stopped "
                "and replaced. Filter or aggregate earlier, avoid huge strings or lists, or "
                "raise the setting.",
                title="Out of memory",
            ) from e
        except _TooBig as e:
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
        except _Dead as e:
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
            return sorted(w.pid for w in self._workers if isinstance(w, _Worker) and w.alive())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = [w for w in self._workers if isinstance(w, _Worker)]
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
