"""Waiting for a server the test started: until its URL answers, or it dies, or time is up."""

import subprocess
import time
import urllib.request
from pathlib import Path


def wait_until_answers(
    url: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    what: str,
    *,
    timeout_s: float = 60,
    every_s: float = 0.3,
) -> None:
    """Return once `url` answers; fail with `proc`'s log if it exits first."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not come up"
            time.sleep(every_s)
