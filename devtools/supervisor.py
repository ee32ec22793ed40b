"""Supervising a throwaway server process for tests and `make run-s3`: start it on fresh ports
(retrying when a port was taken), wait until it answers, stop it with its whole process group,
and show its log's tail when any of this fails."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A `preexec_fn` that sends the child `sig` should the parent die without running
    atexit. It runs after subprocess switched user, as it must: a uid change clears it."""

    def arm() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG (Linux)

    return arm


class EarlyExit(Exception):
    """The server exited while starting: usually a port taken between choosing and binding."""


class SupervisedServer:
    """One server process: `start` with retries, `stop`, `log_tail`. Subclasses say how to
    prepare it (`_prepare`), launch it once (`_start_once`, which ends in `_spawn` and
    `_wait_until_up`) and ask it to stop (`_ask_to_stop`)."""

    #: shown in "… exited at startup"
    name = "server"
    #: shown in the log tail's header
    log_name = "server"
    #: what the process gets should this (the parent) process die
    death_signal = signal.SIGTERM

    def __init__(self, tmp_dir: Path, log_file: str) -> None:
        self.tmp_dir = Path(tmp_dir)
        self.log_path = self.tmp_dir / log_file
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, attempts: int = 3) -> None:
        self._prepare()
        # A free port is only ours until we close it; if something takes it before the
        # server binds it, the server exits at once and fresh ports fix it.
        for attempt in range(1, attempts + 1):
            try:
                self._start_once()
                return
            except EarlyExit:
                self._stop_process()
                if attempt == attempts:
                    self.stop()
                    raise RuntimeError(
                        f"{self.name} exited at startup\n{self.log_tail()}"
                    ) from None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        self._stop_process()
        atexit.unregister(self.stop)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return f"--- {self.log_name} log tail ---\n" + "\n".join(text.splitlines()[-lines:])

    def _prepare(self) -> None:
        """Once before the first attempt (e.g. create the data folder)."""

    def _start_once(self) -> None:
        raise NotImplementedError

    def _ask_to_stop(self, proc: subprocess.Popen[bytes]) -> None:
        # The whole group, so nothing the server spawned outlives it.
        os.killpg(proc.pid, signal.SIGTERM)

    def _spawn(self, cmd: list[str], cwd: Path, **popen: Any) -> None:
        """Run `cmd` in a session of its own, its output appended to the log."""
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent(self.death_signal),
            **popen,
        )
        atexit.unregister(self.stop)  # one registration however many attempts
        atexit.register(self.stop)

    def _wait_until_up(
        self, probe: Callable[[], object], errors: tuple[type[Exception], ...], what: str
    ) -> None:
        """Call `probe` until it stops raising `errors`; EarlyExit if the process ends."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc is None or self._proc.poll() is not None:
                raise EarlyExit
            try:
                probe()
                return
            except errors as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{what} not answering after {START_TIMEOUT:.0f} s: "
                        f"{exc}\n{self.log_tail()}"
                    ) from exc
            time.sleep(0.05)

    def _stop_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            self._ask_to_stop(proc)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
