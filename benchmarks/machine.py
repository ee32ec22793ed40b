"""What a benchmark ran on, recorded beside its numbers."""

import importlib.metadata
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info(packages: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "missing"

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu_count": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in packages},
        **extra,
    }


def write_results(kind: str, title: str, payload: dict[str, Any], table: str) -> Path:
    """`results/<kind>-<time>.json` (everything) and `.md` (the table and the machine)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    machine = "\n".join(f"- {k}: {v}" for k, v in payload["machine"].items())
    stem.with_suffix(".md").write_text(f"# {title}\n\n{table}\n\n## Machine\n\n{machine}\n")
    return stem


def tree_cpu_s() -> float:
    """CPU seconds of this process and its descendants, exited ones included: a process's
    waited-for children (cutime, cstime) count, so run workers that come and go within the
    timed window are not lost."""
    procs: dict[int, tuple[int, int]] = {}  # pid -> (ppid, own + reaped children's ticks)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        procs[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    ours, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in procs.items():
            if ppid == parent and pid not in ours:
                ours.add(pid)
                frontier.append(pid)
    return sum(procs[p][1] for p in ours if p in procs) / os.sysconf("SC_CLK_TCK")


def proc_status_mb(pid: int | str, field_name: str) -> float | None:
    """VmHWM / VmRSS of a process in MiB, from /proc/<pid>/status; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        return None
    return None


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (Linux /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
