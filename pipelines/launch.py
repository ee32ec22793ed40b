"""`make run`: the whole product as local processes on the embedded defaults.

Dagster (code server, webserver, daemon), the Streamlit app and JupyterLab start, each is
waited on until it answers, the URLs (and Jupyter's token) are printed, their logs stream
here with a prefix, and Ctrl-C (or SIGTERM) stops every one of them.

With an app password, the app port is the login gate's (nginx + `streamlit_app.gate`) and
Streamlit itself listens on 127.0.0.1 on an internal port: nothing of it answers before login.
"""

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from lakehouse import Lakehouse, Settings, demo
from lakehouse.errors import ConfigError
from lakehouse.passwords import login_required
from pipelines.serve import DagsterStack, free_port

ROOT = Path(__file__).resolve().parents[1]
_BIN = Path(sys.executable).parent
# "Promote to pipeline" in JupyterLab: the server extension and the prebuilt lab extension
# (jupyter_ratatouille/); docker-compose.yml's jupyter service passes the same flags.
JUPYTER_EXTENSIONS = [
    "--ServerApp.jpserver_extensions=jupyter_ratatouille=True",
    f"--LabApp.extra_labextensions_path={ROOT / 'jupyter_ratatouille' / 'labextension'}",
]


def nginx_missing(settings: Settings) -> str | None:
    """How to install nginx when the app has a password and nginx is not there, else None."""
    if not login_required(settings):
        return None
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        return None
    return (
        "The app has a password, so it is served behind a login gate that needs nginx: "
        "`sudo apt-get install nginx` (Debian/Ubuntu), then `make run` again."
    )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _prefix(name: str, stream: IO[bytes], out: IO[str]) -> None:
    for line in iter(stream.readline, b""):
        out.write(f"[{name}] {line.decode(errors='replace')}")
        out.flush()


def _tail(name: str, path: Path, stop: threading.Event, out: IO[str]) -> None:
    """Follow a log file another process writes (Dagster's), with a prefix."""
    while not path.exists() and not stop.is_set():
        time.sleep(0.2)
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        while not stop.is_set():
            line = f.readline()
            if line:
                out.write(f"[{name}] {line.decode(errors='replace')}")
                out.flush()
            else:
                time.sleep(0.2)


def uploads_host(settings: Settings, host: str) -> str:
    """Without an app password the upload endpoint stays on this machine, whatever `host`."""
    return host if login_required(settings) else "127.0.0.1"


def with_links(
    settings: Settings, host: str, app_port: int, jupyter_port: int, uploads_port: int
) -> Settings:
    """The app's, JupyterLab's and the upload endpoint's addresses as browsers reach them, for
    the links Dagster and the app make, unless the settings name them (e.g. behind a proxy)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    links = {
        "app_url": f"http://{shown}:{app_port}",
        "jupyter_url": f"http://{shown}:{jupyter_port}",
        "uploads_url": f"http://{uploads_host(settings, shown)}:{uploads_port}",
    }
    return settings.replace(
        **{name: url for name, url in links.items() if name not in settings.model_fields_set}
    )


class Launcher:
    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        settings = with_links(
            settings, args.host, args.app_port, args.jupyter_port, args.uploads_port
        )
        self.settings, self.args = settings, args
        self.stack = DagsterStack(settings, args.host, args.dagster_port, args.grpc_port)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self.token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(16)

    def _start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.procs[name] = proc
        assert proc.stdout is not None
        threading.Thread(target=_prefix, args=(name, proc.stdout, sys.stdout), daemon=True).start()

    def _wait(self, name: str, ready: Callable[[], bool], timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see its log above")
            if time.monotonic() > deadline or self.stopping.is_set():
                raise TimeoutError(f"{name} did not answer within {timeout_s:.0f} s")
            time.sleep(0.3)

    def start(self) -> None:
        a, env = self.args, self.stack.env()
        env["RATATOUILLE_UPLOADS_URL"] = self.settings.uploads_url  # the Upload page's uploader
        started = time.monotonic()
        self.stack.start()
        logs = Path(env["DAGSTER_HOME"]) / "logs"
        for name in ("code-server", "webserver", "daemon"):
            threading.Thread(
                target=_tail,
                args=(f"dagster-{name}", logs / f"{name}.log", self.stopping, sys.stdout),
                daemon=True,
            ).start()
        gated = login_required(self.settings)
        # Behind the gate, Streamlit is reachable only from this host, through nginx.
        st_host, st_port = ("127.0.0.1", free_port()) if gated else (a.host, a.app_port)
        self._start(
            "app",
            [
                str(_BIN / "streamlit"), "run", "streamlit_app/streamlit_app.py",
                "--server.address", st_host, "--server.port", str(st_port),
                "--server.headless", "true", "--browser.gatherUsageStats", "false",
            ],
            env | {"RATATOUILLE_DAGSTER_URL": self.stack.url},
        )  # fmt: skip
        self._start(
            "jupyter",
            [
                str(_BIN / "jupyter"), "lab", "--no-browser", f"--ip={a.host}",
                f"--port={a.jupyter_port}", "--ServerApp.port_retries=0",
                f"--ServerApp.root_dir={ROOT / 'notebooks'}", *JUPYTER_EXTENSIONS, "--allow-root",
            ],
            # The promote handler links to Dagster's UI and reloads its code location.
            env | {"JUPYTER_TOKEN": self.token, "RATATOUILLE_DAGSTER_URL": self.stack.url},
        )  # fmt: skip
        # Resumable uploads (tus): ingest each finished file, start its pipeline run at once.
        up_host = uploads_host(self.settings, a.host)
        self._start(
            "uploads",
            [
                str(_BIN / "ratatouille"),
                "uploads",
                "--host",
                up_host,
                "--port",
                str(a.uploads_port),
            ],
            env | {"RATATOUILLE_DAGSTER_URL": self.stack.url},
        )
        if gated:
            self._start(
                "gate",
                [
                    sys.executable, "-m", "streamlit_app.gate",
                    "--listen", f"{a.host}:{a.app_port}", "--upstream", f"{st_host}:{st_port}",
                ],
                env,
            )  # fmt: skip
        app, lab = f"http://{a.host}:{a.app_port}", f"http://{a.host}:{a.jupyter_port}"
        self._wait("app", lambda: _answers(f"http://{st_host}:{st_port}/_stcore/health"))
        if gated:
            self._wait("gate", lambda: _answers(f"{app}/login"))
        self._wait("jupyter", lambda: _answers(f"{lab}/api/status?token={self.token}"))
        uploads = f"http://{up_host}:{a.uploads_port}"
        self._wait("uploads", lambda: _answers(f"{uploads}/health"))
        print(
            f"\nRatatouille is up in {time.monotonic() - started:.1f} s:\n"
            f"  app      {app}"
            + (" (login required)\n" if gated else "\n")
            + f"  dagster  {self.stack.url}\n"
            f"  jupyter  {lab}/lab?token={self.token}\n"
            f"Uploads (tus): {uploads}/files/\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )

    def stop(self) -> None:
        self.stopping.set()
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.stack.stop()


def with_local_s3(settings: Settings, stack: contextlib.ExitStack) -> Settings:
    """Start a SeaweedFS S3 server under the state folder (data kept across runs) and point
    every service at it, with the read-only key for playground queries."""
    from devtools.s3server import REGION, S3Server

    server = S3Server(settings.state_dir.resolve() / "s3")
    server.start()
    stack.callback(server.stop)
    buckets = {"bronze": "bronze", "silver": "silver", "gold": "gold", "landing": "landing"}
    server.create_buckets(buckets.values())
    env = {
        "STORAGE": "s3",
        "S3_ENDPOINT": server.endpoint,
        "S3_ACCESS_KEY": server.admin_key,
        "S3_SECRET_KEY": server.admin_secret,
        "S3_QUERY_ACCESS_KEY": server.readonly_key,
        "S3_QUERY_SECRET_KEY": server.readonly_secret,
        "S3_REGION": REGION,
        "S3_USE_SSL": "false",
        "S3_URL_STYLE": "path",
    }
    for name, value in env.items():
        os.environ[f"RATATOUILLE_{name}"] = value  # the services inherit the environment
    print(f"S3 (SeaweedFS) at http://{server.endpoint}, data in {server.tmp_dir}", flush=True)
    return Settings()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="bind address of every service")
    p.add_argument("--app-port", type=int, default=8501)
    p.add_argument("--dagster-port", type=int, default=3000)
    p.add_argument("--grpc-port", type=int, default=4266)
    p.add_argument("--jupyter-port", type=int, default=8888)
    p.add_argument("--uploads-port", type=int, default=8502, help="resumable uploads (tus)")
    p.add_argument("--s3", action="store_true", help="start a local S3 server and use it")
    args = p.parse_args()
    cleanup = contextlib.ExitStack()
    settings = with_local_s3(Settings(), cleanup) if args.s3 else Settings()
    missing = nginx_missing(settings)
    if missing:
        raise SystemExit(str(ConfigError(missing, title="nginx is missing")))
    if args.s3:
        seeded = demo.seed(Lakehouse(settings))
        print(f"Demo: {len(seeded)} dataset(s) seeded into S3 bronze.", flush=True)
    launcher = Launcher(settings, args)

    def on_signal(signum: int, frame: object) -> None:
        launcher.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        launcher.start()
        while not launcher.stopping.is_set():
            dead = [n for n, proc in launcher.procs.items() if proc.poll() is not None]
            if dead:
                print(f"{', '.join(dead)} stopped; stopping the rest.", flush=True)
                break
            time.sleep(0.5)
    finally:
        print("Stopping…", flush=True)
        launcher.stop()


if __name__ == "__main__":
    main()
