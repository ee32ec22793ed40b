"""A local Ray cluster for tests and benchmarks: a head and one worker node on 127.0.0.1, each
a supervised `ray start --block` from `.venv-ray` (its own environment: Daft needs pyarrow<26,
the product pins 26), and a way to run Daft jobs on it (`devtools/daft_runner.py`).

    cluster = RayCluster(tmp_path)
    cluster.start()
    report = cluster.run({"tables": {...}, "storage_options": {...}, "queries": {...}})
    cluster.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.supervisor import STOP_TIMEOUT, SupervisedServer, die_with_parent

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
VENV_RAY = ROOT / ".venv-ray"
RUNNER = Path(__file__).resolve().parent / "daft_runner.py"
# `ray start` turns 127.0.0.1 into the machine's outward address (for real clusters: ray#59110),
# and a worker node has no flag against it. Tests stay on loopback: skip that one step, and
# Ray then also binds its servers to 127.0.0.1 only.
RAY_START = (
    "import sys, ray._private.services as s; s.resolve_ip_for_localhost = lambda host: host; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"
)
# Ports a node opens besides its workers' (the head adds the GCS, the client server, the
# dashboard's): every one gets a free port, so nothing collides with a developer's Ray or Jupyter.
NODE_PORTS = (
    "node-manager-port",
    "object-manager-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
)
HEAD_PORTS = ("port", "ray-client-server-port", "dashboard-port")
# One port per Ray worker process; Daft starts a few per node.
WORKER_PORTS = 24
# A unix socket path is at most 107 bytes; Ray puts them at
# <temp-dir>/session_<date>_<time>_<usec>_<pid>/sockets/plasma_store.
SOCKET_SUFFIX = len("/session_2026-12-06_23-29-51_081234_4194304/sockets/plasma_store")
MAX_TEMP_DIR = 107 - SOCKET_SUFFIX
JOB_TIMEOUT = 600.0


def ray_env(tmp_dir: Path) -> dict[str, str]:
    """The environment of every cluster process and driver: ours, minus what would steer
    Ray, Daft or object_store elsewhere, with telemetry off (there is no network to send to)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAY_", "AWS_", "DAFT_")) and k not in ("PYTHONHOME", "VIRTUAL_ENV")
    }
    return env | {
        "TMPDIR": str(tmp_dir),
        "RAY_USAGE_STATS_ENABLED": "0",
        "DO_NOT_TRACK": "1",
        "DAFT_ANALYTICS_ENABLED": "0",
        "DAFT_PROGRESS_BAR": "0",
        # SIGTERM would wait up to 30 s for a drain that matters only to Ray Serve.
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
    }


def _free_ports(n: int) -> list[int]:
    """n distinct free ports: all are held open together so none repeats."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]


def _free_port_range(n: int, exclude: set[int]) -> int:
    """The first of n consecutive free ports (Ray takes worker ports as a min-max range)."""
    for _ in range(200):
        first = random.randint(20_000, 60_000 - n)
        if set(range(first, first + n)) & exclude:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for port in range(first, first + n):
                    stack.enter_context(socket.socket()).bind((HOST, port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {n} consecutive free ports")


def _port_open(port: int) -> None:
    with socket.create_connection((HOST, port), timeout=1):
        pass


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every live process; the start time tells a reused
    pid from ours. Zombies count as gone: nothing may reap them if PID 1 does not."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            table[int(entry)] = (int(fields[1]), fields[19])
    return table


def descendants(root: int) -> dict[int, str]:
    """`root` and every process below it: pid -> start time."""
    table = _proc_table()
    if root not in table:
        return {}
    found, frontier = {root: table[root][1]}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def alive(procs: dict[int, str]) -> list[int]:
    """The processes of `procs` (pid -> start time) still running, not a reuse of their pid."""
    table = _proc_table()
    return [pid for pid, started in procs.items() if table.get(pid, (0, ""))[1] == started]


def wait_gone(procs: dict[int, str], timeout: float) -> list[int]:
    """Wait until the processes have ended; those still running after `timeout`."""
    deadline = time.monotonic() + timeout
    while (running := alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running


def cpu_s(procs: dict[int, str]) -> float:
    """CPU seconds of these processes and of the children they have reaped (a Ray worker
    that ended counts in its raylet's)."""
    total = 0
    for pid in alive(procs):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """A process's resident memory in MiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RayNode(SupervisedServer):
    """One `ray start --block`: the head (`head_address=None`) or a worker joining it."""

    log_name = "ray start"

    def __init__(
        self,
        tmp_dir: Path,
        role: str,
        temp_dir: Path,
        python: Path,
        *,
        head_address: str | None = None,
        num_cpus: int = 1,
        object_store_mb: int = 256,
    ) -> None:
        super().__init__(tmp_dir, f"ray-{role}.log")
        self.name = f"ray {role} node"
        self.role = role
        self.temp_dir = temp_dir  # Ray's --temp-dir: sessions, sockets, logs, spilled objects
        self.python = python
        self.head_address = head_address
        self.num_cpus = num_cpus
        self.object_store_mb = object_store_mb
        self.ports: dict[str, int] = {}

    @property
    def address(self) -> str:
        """The GCS address drivers and other nodes join (the head's)."""
        return self.head_address or f"{HOST}:{self.ports['port']}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _start_once(self) -> None:
        names = NODE_PORTS + (HEAD_PORTS if self.head_address is None else ())
        self.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        first = _free_port_range(WORKER_PORTS, set(self.ports.values()))
        cmd = [
            str(self.python),
            "-c",
            RAY_START,
            "start",
            "--block",
            "--node-ip-address",
            HOST,
            *(f"--{name}={port}" for name, port in self.ports.items()),
            f"--min-worker-port={first}",
            f"--max-worker-port={first + WORKER_PORTS - 1}",
            f"--num-cpus={self.num_cpus}",
            f"--object-store-memory={self.object_store_mb * 2**20}",
            f"--temp-dir={self.temp_dir}",
            "--disable-usage-stats",
            "--log-style=record",
        ]
        if self.head_address is None:
            cmd += ["--head", "--include-dashboard=false"]
        else:
            cmd += ["--address", self.head_address]
        self._spawn(cmd, cwd=self.tmp_dir, env=ray_env(self.tmp_dir))
        ports = [self.ports["node-manager-port"], self.ports["object-manager-port"]]
        if self.head_address is None:
            ports.insert(0, self.ports["port"])

        def probe() -> None:
            for port in ports:
                _port_open(port)

        self._wait_until_up(probe, (OSError,), f"{self.name} on {HOST}:{ports[0]}")

    def _stop_process(self) -> None:
        # SIGTERM to the group lets `ray start` stop its raylet, GCS and agents; a Ray worker
        # left behind (it may outlive its raylet) is killed by pid, checked by start time.
        left = descendants(self._proc.pid) if self._proc is not None else {}
        super()._stop_process()
        for pid in wait_gone(left, STOP_TIMEOUT):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_gone(left, STOP_TIMEOUT)


class RayCluster:
    """A head and one worker node on 127.0.0.1, one CPU each, and Daft jobs run against them."""

    def __init__(
        self,
        tmp_dir: Path,
        *,
        num_cpus: int = 1,
        object_store_mb: int = 256,
        venv: Path = VENV_RAY,
    ) -> None:
        self.tmp_dir = Path(tmp_dir)
        self.python = venv / "bin" / "python"
        self.num_cpus = num_cpus
        self.object_store_mb = object_store_mb
        self.head: RayNode | None = None
        self.worker: RayNode | None = None
        self._short: Path | None = None

    @property
    def address(self) -> str:
        if self.head is None:
            raise RuntimeError("the cluster is not started")
        return self.head.address

    @property
    def nodes(self) -> list[RayNode]:
        return [n for n in (self.head, self.worker) if n is not None]

    def start(self) -> None:
        if not self.python.exists():
            raise RuntimeError(f"{self.python} is missing: build it with `make ray-env`")
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.head = self._node("head", None)
            self.head.start()
            self.worker = self._node("worker", self.head.address)
            self.worker.start()
        except BaseException:
            self.stop()
            raise

    def _node(self, role: str, head_address: str | None) -> RayNode:
        return RayNode(
            self.tmp_dir,
            role,
            self._temp_dir(role),
            self.python,
            head_address=head_address,
            num_cpus=self.num_cpus,
            object_store_mb=self.object_store_mb,
        )

    def _temp_dir(self, role: str) -> Path:
        """Ray's temp dir for a node: under tmp_dir, reached through a short link in /tmp when
        tmp_dir's path would make Ray's socket paths too long (pytest's usually does)."""
        real = self.tmp_dir / "ray" / role
        real.mkdir(parents=True, exist_ok=True)
        if len(str(real)) <= MAX_TEMP_DIR:
            return real
        if self._short is None:
            self._short = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        link = self._short / role[0]
        link.symlink_to(real, target_is_directory=True)
        return link

    def stop(self) -> None:
        """Worker first: a worker node whose GCS is gone keeps retrying it and is slow to stop."""
        for node in (self.worker, self.head):
            if node is not None:
                node.stop()
        if self._short is not None:
            shutil.rmtree(self._short, ignore_errors=True)  # links only; the data stays
            self._short = None

    def processes(self) -> dict[int, str]:
        """Every live process of the cluster (both nodes' trees: raylets, GCS, Ray workers):
        pid -> start time, so a check after `stop` cannot mistake a reused pid for ours."""
        return {p: t for node in self.nodes if node.pid for p, t in descendants(node.pid).items()}

    def pids(self) -> list[int]:
        return list(self.processes())

    def node_cpu_s(self) -> dict[str, float]:
        """CPU seconds each node's processes have used so far (role -> seconds): how the
        work was shared."""
        return {
            node.role: cpu_s(descendants(node.pid)) for node in self.nodes if node.pid is not None
        }

    def rss_mb(self) -> float:
        """Resident memory of the whole cluster now (sum over its processes), MiB."""
        return sum(rss_mb(p) for p in self.pids())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(node.log_tail(lines) for node in self.nodes)

    def run(
        self,
        job: dict[str, Any],
        *,
        timeout: float = JOB_TIMEOUT,
        on_tick: Callable[[int], None] | None = None,
        tick_s: float = 0.25,
    ) -> dict[str, Any]:
        """Run a Daft job (see devtools/daft_runner.py) as a driver on this cluster; its
        report. `on_tick(driver_pid)` is called every `tick_s` while it runs (sampling)."""
        job = {"address": self.address, "min_nodes": len(self.nodes), **job}
        out_path, err_path = self.tmp_dir / "daft-job.out", self.tmp_dir / "daft-job.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [str(self.python), str(RUNNER)],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
                cwd=self.tmp_dir,
                env=ray_env(self.tmp_dir),
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if on_tick is not None:
                    on_tick(proc.pid)
                time.sleep(tick_s)
            timed_out = proc.poll() is None
            if timed_out:
                proc.kill()
                proc.wait()
        text = out_path.read_text(errors="replace").strip()
        if proc.returncode != 0 or not text:
            why = f"stopped after {timeout:.0f} s" if timed_out else "failed"
            tail = err_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"Daft job {why} (exit {proc.returncode}):\n{tail}")
        report: dict[str, Any] = json.loads(text.splitlines()[-1])
        return report
