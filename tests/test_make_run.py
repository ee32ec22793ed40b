"""`make run`, the README's first command, brings the app up on the embedded defaults."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_make_run_serves_the_app(tmp_path) -> None:
    port, dagster_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATATOUILLE_")}
    env |= {
        "RATATOUILLE_LAKE_ROOT": str(tmp_path / "lake"),
        "RATATOUILLE_STATE_DIR": str(tmp_path / "state"),
    }
    proc = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "run",
            f"APP_PORT={port}",
            f"DAGSTER_PORT={dagster_port}",
            f"DAGSTER_GRPC_PORT={free_port()}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as r:
                    assert r.read() == b"ok"
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app did not come up"
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            assert b"<title>" in r.read()
        deadline = time.monotonic() + 120
        while True:  # Dagster's UI, with the demo seeded into bronze
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{dagster_port}/server_info") as r:
                    break
            except OSError:
                assert time.monotonic() < deadline, "Dagster did not come up"
                time.sleep(0.5)
        assert (tmp_path / "lake" / "bronze" / "orders").is_dir(), "the demo was seeded"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert (tmp_path / "lake" / "bronze").is_dir(), "the app opened the configured lake"
