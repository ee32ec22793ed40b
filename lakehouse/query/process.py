"""One query worker process as the engine sees it: started, asked, watched, killed.

Frames from the worker are read against a deadline and a byte cap; a worker past its memory
ceiling is killed here.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from lakehouse.errors import QueryError
from lakehouse.query.limits import MB, memory_ceiling_mb
from lakehouse.settings import Settings

# After the time limit the worker interrupts the query itself; this is how long it gets to
# answer before it is killed.
KILL_GRACE_S = 5.0
START_TIMEOUT_S = 60.0
# How often the engine reads a busy worker's resident memory (its ceiling is enforced here, by
# SIGKILL); between two samples a worker can grow past its ceiling, so sampling stays frequent.
RSS_SAMPLE_S = 0.05
# Frames the app accepts from a worker: headers are small; a result may exceed its cap by the
# Arrow stream's framing, never by more.
MAX_HEADER_BYTES = 16 * MB


def max_body_bytes(result_cap: int) -> int:
    return result_cap + result_cap // 8 + 4 * MB


class WorkerDied(Exception):
    pass


class OverMemory(Exception):
    pass


class TooBig(Exception):
    pass


class Worker:
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
                {"settings": plain_settings(settings)}, time.monotonic() + START_TIMEOUT_S
            )
        except (WorkerDied, TimeoutError) as e:
            self.kill()
            raise QueryError(
                f"A query worker did not start ({e}).", title="Query engine unavailable"
            ) from e
        except OverMemory as e:
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
        answer to max_body bytes (raising OverMemory / TooBig, the worker left running)."""
        data = json.dumps(req).encode()
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(len(data).to_bytes(8, "big") + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise WorkerDied("the worker is gone") from e
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
                    raise TooBig(f"{n / MB:,.1f} MB")
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
                raise OverMemory(f"{rss / MB:,.0f} MB")
            if not ready:
                continue
            assert self.proc.stdout is not None
            try:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise WorkerDied(f"the worker exited ({exit_reason(self.proc)})")
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


def plain_settings(settings: Settings) -> dict[str, Any]:
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


def exit_reason(proc: subprocess.Popen[bytes]) -> str:
    try:
        code = proc.wait(timeout=1)
    except subprocess.TimeoutExpired:
        return "closed its output"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
