"""Dagster as three local processes: code server, webserver (UI on :3000) and daemon.

The webserver and the daemon both load code from one `dagster code-server`, so a
`reloadRepositoryLocation` (a new SQL model, a new notebook step) reaches both at once, and
the location name, which keys sensor cursors, never changes. `make run`, the tests and the
pipeline benchmark start Dagster through `DagsterStack`; the compose services run the same
commands (`python -m pipelines.serve --print-commands` lists them).
"""

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from lakehouse import Settings
from pipelines.dagster_home import prepare_home

LOCATION = "ratatouille"
_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_workspace(home: Path, host: str, grpc_port: int) -> Path:
    path = home / "workspace.yaml"
    path.write_text(
        "load_from:\n"
        "  - grpc_server:\n"
        f"      host: {host}\n"
        f"      port: {grpc_port}\n"
        f"      location_name: {LOCATION}\n"
    )
    return path


@dataclass
class DagsterStack:
    """Start with `with DagsterStack(settings) as stack:`; everything stops on exit."""

    settings: Settings
    host: str = "127.0.0.1"
    port: int = 3000
    grpc_port: int = 0
    postgres: bool = False
    log_dir: Path | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def commands(self) -> dict[str, list[str]]:
        home = prepare_home(self.settings, postgres=self.postgres)
        self.grpc_port = self.grpc_port or free_port()
        workspace = str(write_workspace(home, self.host, self.grpc_port))
        return {
            "code-server": [
                sys.executable, "-m", "pipelines.code_server", "code-server", "start",
                "-m", "pipelines.definitions", "-a", "defs",
                "--host", self.host, "--port", str(self.grpc_port),
                "--location-name", LOCATION,
            ],
            "webserver": [
                str(_BIN / "dagster-webserver"), "-h", self.host, "-p", str(self.port),
                "-w", workspace,
            ],
            "daemon": [str(_BIN / "dagster-daemon"), "run", "-w", workspace],
        }  # fmt: skip

    def env(self) -> dict[str, str]:
        home = prepare_home(self.settings, postgres=self.postgres)
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        # Runs, notebook kernels and code all open the same lake, wherever their cwd is.
        for name in ("lake_root", "state_dir", "models_dir", "notebook_steps_dir", "datasets_file"):
            env[f"RATATOUILLE_{name.upper()}"] = str(Path(getattr(self.settings, name)).resolve())
        # Links in materializations (a notebook run) and the app point where people browse.
        for name in ("app_url", "jupyter_url"):
            env[f"RATATOUILLE_{name.upper()}"] = getattr(self.settings, name)
        return env

    def start(self, timeout_s: float = 120) -> "DagsterStack":
        env = self.env()
        logs = self.log_dir or Path(env["DAGSTER_HOME"]) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name, cmd in self.commands().items():
            out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - the child writes to it until stop
            self.procs[name] = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            if name == "code-server":  # the others need it to load the code
                self._wait(name, self._grpc_ready, timeout_s)
        self._wait("webserver", self._webserver_ready, timeout_s)
        self._wait("daemon", self._daemon_ready, timeout_s)
        return self

    def _wait(self, name: str, ready: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for proc_name, proc in self.procs.items():
                if proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"dagster {proc_name} exited with {proc.returncode}")
            if ready():
                return
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"dagster {name} was not ready within {timeout_s:.0f} s")

    def _grpc_ready(self) -> bool:
        from dagster._grpc.client import DagsterGrpcClient

        try:
            DagsterGrpcClient(port=self.grpc_port, host=self.host).ping("ready")
            return True
        except Exception:  # noqa: BLE001 - not listening yet
            return False

    def graphql(self, query: str, variables: dict[str, object] | None = None) -> dict[str, object]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            f"{self.url}/graphql", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            data: dict[str, object] = json.load(resp)
        return data

    def _webserver_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def daemon_statuses(self) -> dict[str, bool]:
        data = self.graphql(
            "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"
        )
        statuses = data["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]  # type: ignore[index]
        return {s["daemonType"]: bool(s["healthy"]) for s in statuses}

    def _daemon_ready(self) -> bool:
        try:
            statuses = self.daemon_statuses()
        except (urllib.error.URLError, OSError, KeyError, TypeError):
            return False
        return bool(statuses) and all(statuses.get(d) for d in ("SENSOR", "QUEUED_RUN_COORDINATOR"))

    def reload(self) -> None:
        """Load new or changed models and notebook steps into webserver and daemon."""
        self.graphql(
            "mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name)"
            " { __typename } }",
            {"name": LOCATION},
        )

    def stop(self, timeout_s: float = 20) -> None:
        """Daemon and webserver by SIGTERM; the code server (which ignores it) over gRPC."""
        for name in ("daemon", "webserver"):
            if (proc := self.procs.get(name)) and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        if (proc := self.procs.get("code-server")) and proc.poll() is None:
            from dagster._grpc.client import DagsterGrpcClient

            # It may be gone already; the kill below is the fallback.
            with contextlib.suppress(Exception):
                DagsterGrpcClient(port=self.grpc_port, host=self.host).shutdown_server()
        deadline = time.monotonic() + timeout_s
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # Run workers the code server started live in its process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()

    def __enter__(self) -> "DagsterStack":
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--grpc-port", type=int, default=4266)
    parser.add_argument("--postgres", action="store_true", help="Dagster state in PostgreSQL")
    parser.add_argument("--print-commands", action="store_true")
    args = parser.parse_args()
    stack = DagsterStack(Settings(), args.host, args.port, args.grpc_port, args.postgres)
    if args.print_commands:
        for name, cmd in stack.commands().items():
            print(f"{name}: {' '.join(cmd)}")
        return
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with stack:
        print(f"Dagster UI: {stack.url}", flush=True)
        while not stopping and all(p.poll() is None for p in stack.procs.values()):
            time.sleep(0.5)


if __name__ == "__main__":
    main()
