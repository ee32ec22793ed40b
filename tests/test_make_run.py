"""`make run`, the README's first command, brings the app up on the embedded defaults."""

import io
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError

from lakehouse import Lakehouse, Settings, upload_outcome, upload_token

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Vq7#pL2m!xR9wT4z-gate"  # strong enough for `ratatouille doctor`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, if only to say no
    except OSError:
        return False


def processes_with(env_entry: str) -> list[str]:
    """Command lines of live processes whose environment holds `env_entry`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if env_entry.encode() in (proc / "environ").read_bytes().split(b"\0"):
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if cmd:  # zombies have none
                    found.append(f"{proc.name}: {cmd}")
        except OSError:  # not a process, gone, or not ours to read
            continue
    return found


def lake_env_of(command: str, state_dir: str) -> dict[str, str]:
    """The lake settings (RATATOUILLE_LAKE_ROOT, STATE_DIR, STORAGE, S3_*) in the environment
    of the live `ratatouille <command>` process started with this state folder."""
    wanted = ("LAKE_ROOT", "STATE_DIR", "STORAGE", "S3_")
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if command.encode() not in cmd:
                continue
            pairs = (e.decode().split("=", 1) for e in (proc / "environ").read_bytes().split(b"\0"))
            env = dict(p for p in pairs if len(p) == 2)
        except OSError:
            continue
        if env.get("RATATOUILLE_STATE_DIR") == state_dir:
            return {
                k: v
                for k, v in env.items()
                if k.startswith("RATATOUILLE_")
                and k.removeprefix("RATATOUILLE_").startswith(wanted)
            }
    raise AssertionError(f"no `{command}` process with state folder {state_dir}")


def check_uploads(url: str, env: dict[str, str], *, login: bool) -> None:
    """A file sent with a plain tus client lands in bronze; with a password, only with the
    token a logged-in page gets."""
    # The lake as the upload service sees it (`make run-s3` gives it its S3 server's keys).
    service = lake_env_of("uploads", env["RATATOUILLE_STATE_DIR"])
    settings = Settings.model_validate(
        {k.removeprefix("RATATOUILLE_").lower(): v for k, v in service.items()}
        | {"app_password": PASSWORD if login else None}
    )
    headers = {}
    if login:
        with pytest.raises(TusCommunicationError) as refused:
            tus.TusClient(url).uploader(
                file_stream=io.BytesIO(b"a\n1\n"), metadata={"filename": "a.csv", "dataset": "a"}
            ).upload()
        assert refused.value.status_code == 401
        headers = {"Authorization": f"Bearer {upload_token(settings, 'admin')}"}
    uploader = tus.TusClient(url, headers=headers).uploader(
        file_stream=io.BytesIO(b"city,n\nOslo,1\nLima,2\n"),
        metadata={"filename": "cities.csv", "dataset": "cities_upload"},
    )
    uploader.upload()
    upload_id = str(uploader.url).rsplit("/", 1)[-1]
    lake = Lakehouse(settings)
    deadline = time.monotonic() + 60
    while (record := upload_outcome(settings, upload_id, lake.storage)).state != "ingested":
        assert record.state != "rejected", record.error_message
        assert time.monotonic() < deadline, "the upload was not ingested"
        time.sleep(0.2)
    assert lake.bronze_batches("cities_upload")[-1].rows == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "target", ["run", "run-login", pytest.param("run-s3", marks=pytest.mark.s3)]
)
def test_make_run_serves_the_app(tmp_path, target: str) -> None:
    """`run-login` is `make run` with an app password: the app port is the login gate's."""
    port, dagster_port, jupyter_port, uploads_port = (free_port() for _ in range(4))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATATOUILLE_")}
    env |= {
        "RATATOUILLE_LAKE_ROOT": str(tmp_path / "lake"),
        "RATATOUILLE_STATE_DIR": str(tmp_path / "state"),
    }
    if target == "run-login":
        env["RATATOUILLE_APP_PASSWORD"] = PASSWORD
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            target.removesuffix("-login"),
            f"APP_PORT={port}",
            f"DAGSTER_PORT={dagster_port}",
            f"DAGSTER_GRPC_PORT={free_port()}",
            f"JUPYTER_PORT={jupyter_port}",
            f"UPLOADS_PORT={uploads_port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),  # a file: a pipe nobody reads would fill and block the logs
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as r:
                    body = r.read()
                    assert body == b"ok" if target != "run-login" else b"Password" in body
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app did not come up"
                time.sleep(0.5)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        if target == "run-login":
            form = urllib.parse.urlencode({"user": "admin", "password": PASSWORD}).encode()
            while True:  # the gate answers before Streamlit is up (nginx says 502 meanwhile)
                assert proc.poll() is None, log.read_text()
                try:
                    with opener.open(f"http://127.0.0.1:{port}/login", data=form) as r:
                        assert r.url.endswith("/"), "a login lands on the app"
                    with opener.open(f"http://127.0.0.1:{port}/_stcore/health") as r:
                        assert r.read() == b"ok", "after login the app answers"
                        break
                except OSError:
                    assert time.monotonic() < deadline, "the app did not come up behind the gate"
                    time.sleep(0.5)
        with opener.open(f"http://127.0.0.1:{port}/") as r:
            assert b"<title>" in r.read()
        deadline = time.monotonic() + 120
        while True:  # Dagster's UI, with the demo seeded into bronze
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{dagster_port}/server_info") as r:
                    break
            except OSError:
                assert time.monotonic() < deadline, "Dagster did not come up"
                time.sleep(0.5)
        if target == "run":
            assert (tmp_path / "lake" / "bronze" / "orders").is_dir(), "the demo was seeded"
            gold = tmp_path / "lake" / "gold" / "revenue_by_month" / "_delta_log"
            loop_deadline = time.monotonic() + 180
            while not gold.exists():  # the demo flows through the pipelines on its own
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < loop_deadline, "the demo did not reach gold"
                time.sleep(1)
        while True:  # JupyterLab, and the launcher says the stack is up
            assert proc.poll() is None, log.read_text()
            if _answers(f"http://127.0.0.1:{jupyter_port}/api/status"):
                break
            assert time.monotonic() < deadline, "JupyterLab did not come up"
            time.sleep(0.5)
        uploads = f"http://127.0.0.1:{uploads_port}/files/"
        while f"Uploads (tus): {uploads}" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the launcher did not print the upload endpoint"
            time.sleep(0.5)
        check_uploads(uploads, env, login=target == "run-login")
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends
        proc.wait(timeout=60)
    out = log.read_text()
    assert "Ratatouille is up" in out and "jupyter" in out and "token=" in out
    assert "[app]" in out, "logs stream with a prefix"
    if target == "run-s3":
        assert "S3 (SeaweedFS) at http://127.0.0.1:" in out
        assert "Demo: 4 dataset(s) seeded into S3 bronze." in out
    left = processes_with(f"RATATOUILLE_STATE_DIR={tmp_path / 'state'}")
    assert left == [], f"processes left behind: {left}"
    for p in (port, dagster_port, jupyter_port, uploads_port):
        assert not _answers(f"http://127.0.0.1:{p}/"), f"port {p} still answers"
    if target == "run":
        assert (tmp_path / "lake" / "bronze").is_dir(), "the app opened the configured lake"
