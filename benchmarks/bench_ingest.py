"""Benchmark `ratatouille ingest` against raw DuckDB and pandas on TPC-H `lineitem` as CSV.

Each method runs in a fresh child process, so its peak RSS is its own: the parent reads the
kernel's high-water mark for that one child with `os.wait4` (exact, no polling gaps; the
parent stays small because a child's figure starts from its parent's RSS at fork). Wall
time is measured by the parent around the whole child (interpreter start and imports
included); "work s" is the time the child itself reports for the conversion alone; "CPU s"
is the child's own user + system time, the figure other work on a shared box disturbs least.

    python -m benchmarks.bench_ingest [--sf 1] [--repeat 3] [--stat median|best]
"""

import argparse
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import machine

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"  # gitignored: the CSVs and per-run scratch folders
BASELINE = "duckdb"
METHODS = {
    "ingest": "(a) ratatouille ingest",
    "duckdb": "(b) raw DuckDB COPY",
    "pandas": "(c) pandas + pyarrow",
    "upload": "(d) an upload's ingest (sha256 taken while the bytes arrived)",
}
WALL_TARGET = 1.15  # ingest wall time / raw DuckDB's
RSS_TARGET = 1.5  # ingest peak RSS / raw DuckDB's
NOISY_CPU_S = 0.5  # others' CPU during one run above which the table warns
SF1_ROWS = 6_001_215  # lineitem's row count at scale 1, from the TPC-H spec


@dataclass(frozen=True)
class Sample:
    """One timed run of one method."""

    method: str
    wall_s: float
    work_s: float
    peak_rss_mb: float
    rows: int
    others_cpu_s: float  # CPU time other processes used during the run: noise on a shared box
    cpu_s: float = 0.0  # the child's own user + system time (0 where a caller did not measure it)


def sql_str(value: str | Path) -> str:
    """A SQL string literal (paths may contain quotes)."""
    return "'" + str(value).replace("'", "''") + "'"


# -- data ----------------------------------------------------------------------------------


def tpch_extension() -> Path:
    """The tpch extension binary shipped by the duckdb-extension-tpch wheel (no network)."""
    spec = importlib.util.find_spec("duckdb_extension_tpch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("duckdb-extension-tpch is missing: pip install -r requirements-dev.txt")
    version = importlib.metadata.version("duckdb")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "extensions" / f"v{version}" / "tpch.duckdb_extension"
    if not path.is_file():
        sys.exit(f"{path} is missing: pin duckdb-extension-tpch to duckdb {version}.")
    return path


def ensure_csv(sf: float) -> Path:
    """Generate lineitem at scale `sf` once; later runs reuse it."""
    csv = DATA / f"sf{sf:g}" / "lineitem.csv"
    if csv.is_file():
        return csv
    csv.parent.mkdir(parents=True, exist_ok=True)
    partial = csv.with_name("lineitem.csv.partial")  # an interrupted run leaves no half file
    print(f"Generating TPC-H SF{sf:g} lineitem into {csv} ...", flush=True)
    started = time.perf_counter()
    # In a child: dbgen leaves the parent GBs larger, and a child's ru_maxrss starts from the
    # RSS of the parent it was forked from, which would then mask every method's own peak.
    # As a module from the repo root: a child run as a script could not import `benchmarks`.
    me = ["-m", __spec__.name if __spec__ else "benchmarks.bench_ingest"]
    subprocess.run([sys.executable, *me, "--sf", f"{sf:g}", "--generate", str(partial)], check=True)
    partial.replace(csv)
    size = csv.stat().st_size / 2**20
    print(f"  {size:,.0f} MB in {time.perf_counter() - started:.1f} s", flush=True)
    return csv


def generate_csv(sf: float, dest: Path) -> None:
    """Entry point inside the generating child: dbgen, then COPY lineitem to CSV."""
    import duckdb

    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    con = duckdb.connect(":memory:", config=config)
    con.execute(f"LOAD {sql_str(tpch_extension())}")
    con.execute(f"CALL dbgen(sf={sf:g})")
    con.execute(f"COPY lineitem TO {sql_str(dest)} (FORMAT csv, HEADER, DELIMITER ',')")
    con.close()


def warm_page_cache(path: Path) -> None:
    """Read the CSV once so that no method pays for (or profits from) the first cold read."""
    buf = bytearray(16 * 2**20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


# -- the children --------------------------------------------------------------------------


def child_duckdb(csv: Path, out: Path) -> int:
    import duckdb

    con = duckdb.connect(":memory:")  # default settings: threads, memory limit, snappy
    row = con.execute(f"COPY (FROM read_csv({sql_str(csv)})) TO {sql_str(out)}").fetchone()
    assert row is not None
    return int(row[0])


def child_pandas(csv: Path, out: Path) -> int:
    import pandas as pd

    df = pd.read_csv(csv)
    df.to_parquet(out, engine="pyarrow")
    return len(df)


def child_upload(csv: Path, out: Path) -> int:
    """What the upload service does with a finished upload: its bytes are the service's own
    file (here a hard link of the CSV, made before the clock) and their sha256 was computed
    as they arrived, so the ingest neither copies nor reads them again for the hash."""
    from lakehouse import Settings
    from lakehouse.ingest.load import ingest
    from lakehouse.storage import open_storage

    settings = Settings()
    digest = out.with_suffix(".sha256").read_text().strip()
    result = ingest(
        settings,
        open_storage(settings),
        out.with_suffix(".bin"),
        dataset="lineitem",
        filename=csv.name,
        owned=True,
        sha256=digest,
    )
    return result.manifest.rows


def run_child(method: str, csv: Path, out: Path) -> None:
    """Entry point inside a child: do the work, print {"rows", "elapsed_s"} as JSON."""
    work = {"duckdb": child_duckdb, "pandas": child_pandas, "upload": child_upload}[method]
    # Import before the clock starts, as the CLI's own elapsed_s excludes its imports too.
    importlib.import_module({"duckdb": "duckdb", "pandas": "pandas"}.get(method, "lakehouse"))
    started = time.perf_counter()
    rows = work(csv, out)
    print(json.dumps({"rows": rows, "elapsed_s": round(time.perf_counter() - started, 3)}))


# -- measuring -----------------------------------------------------------------------------


def measure(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float, str]:
    """Run `cmd` to completion; return (wall s, peak RSS MiB, others' CPU s, stdout)."""
    wall, rss, others, _, stdout = measure_cpu(cmd, cwd, env)
    return wall, rss, others, stdout


def measure_cpu(
    cmd: list[str], cwd: Path, env: dict[str, str]
) -> tuple[float, float, float, float, str]:
    """Run `cmd` to completion; return (wall s, peak RSS MiB, others' CPU s, own CPU s, stdout).

    Others' CPU is what the machine burned beside the child: other people's jobs on a shared
    box inflate wall times, so each sample says how much it was disturbed.
    """
    out_path, err_path = cwd / "child.out", cwd / "child.err"
    # Output goes to files, not pipes: we wait with wait4 and must not read while waiting.
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        busy, started = machine.busy_cpu_s(), time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
        wall, busy = time.perf_counter() - started, machine.busy_cpu_s() - busy
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    if proc.returncode != 0:
        detail = err_path.read_text(errors="replace") + out_path.read_text(errors="replace")
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{detail[-4000:]}")
    own = usage.ru_utime + usage.ru_stime
    others = max(0.0, busy - own)
    return wall, usage.ru_maxrss / 1024, others, own, out_path.read_text()  # maxrss in KiB


def child_env(scratch: Path) -> dict[str, str]:
    """The environment minus any RATATOUILLE_* of the caller, plus a fresh local lake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATATOUILLE_")}
    env["RATATOUILLE_STORAGE"] = "local"
    env["RATATOUILLE_LAKE_ROOT"] = str(scratch / "lake")
    env["RATATOUILLE_STATE_DIR"] = str(scratch / "state")
    return env


def command(method: str, csv: Path, scratch: Path) -> list[str]:
    if method == "ingest":
        cli = Path(sys.executable).with_name("ratatouille")
        return [
            str(cli if cli.exists() else shutil.which("ratatouille")),
            "ingest",
            str(csv),
            "--json",
        ]
    out = scratch / "out.parquet"
    module = __spec__.name if __spec__ else "benchmarks.bench_ingest"
    return [sys.executable, "-m", module, "--child", method, str(csv), str(out)]


@functools.cache
def csv_sha256(csv: Path) -> str:
    with open(csv, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def run_method(method: str, csv: Path) -> Sample:
    """One fresh child in a fresh scratch folder (cwd too, so no .env is picked up)."""
    (DATA / "runs").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{method}-", dir=DATA / "runs"))
    os.sync()  # the previous run's dirty pages are flushed now, not during this run
    try:
        cmd = command(method, csv, scratch)
        if method == "upload":  # the received file and its hash, as the upload left them
            os.link(csv, scratch / "out.bin")
            (scratch / "out.sha256").write_text(csv_sha256(csv))
        wall, rss, others, cpu, stdout = measure_cpu(cmd, scratch, child_env(scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # a lake copy of SF1 is ~1 GB
    report = json.loads(stdout.strip().splitlines()[-1])
    if method == "ingest" and not report.get("ok"):
        sys.exit(f"ingest failed: {report}")
    work = float(report["elapsed_s"])
    return Sample(method, wall, work, rss, int(report["rows"]), others, cpu)


# -- reporting -----------------------------------------------------------------------------


def aggregate(samples: list[Sample], stat: str) -> Sample:
    """Per-metric median (or best); every repeat must have produced the same row count."""
    rows = {s.rows for s in samples}
    if len(rows) != 1:
        sys.exit(f"{samples[0].method}: row counts differ between repeats: {sorted(rows)}")
    pick = statistics.median if stat == "median" else min
    return Sample(
        samples[0].method,
        pick(s.wall_s for s in samples),
        pick(s.work_s for s in samples),
        pick(s.peak_rss_mb for s in samples),
        rows.pop(),
        max(s.others_cpu_s for s in samples),  # the worst disturbance, whatever `stat`
        pick(s.cpu_s for s in samples),
    )


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "MISS"


def render_table(results: dict[str, Sample], load: tuple[float, float]) -> str:
    base, ours, pandas = results[BASELINE], results["ingest"], results["pandas"]
    lines = [
        "| method | wall s | work s | CPU s | peak RSS MB | wall × (b) | CPU × (b) | RSS × (b) "
        "| rows |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for method, s in results.items():
        lines.append(
            f"| {METHODS[method]} | {s.wall_s:.2f} | {s.work_s:.2f} | {s.cpu_s:.2f} | "
            f"{s.peak_rss_mb:,.0f} | {s.wall_s / base.wall_s:.2f} | {s.cpu_s / base.cpu_s:.2f} | "
            f"{s.peak_rss_mb / base.peak_rss_mb:.2f} | {s.rows:,} |"
        )
    wall = ours.wall_s / base.wall_s
    rss = ours.peak_rss_mb / base.peak_rss_mb
    lines += [
        "",
        f"- ingest wall ≤ {WALL_TARGET}× raw DuckDB: {wall:.2f}× → {verdict(wall, WALL_TARGET)}",
        f"- ingest peak RSS ≤ {RSS_TARGET}× raw DuckDB: {rss:.2f}× → {verdict(rss, RSS_TARGET)}",
        *(
            [
                f"- an upload's ingest wall ≤ {WALL_TARGET}× raw DuckDB: "
                f"{results['upload'].wall_s / base.wall_s:.2f}× → "
                f"{verdict(results['upload'].wall_s / base.wall_s, WALL_TARGET)}"
            ]
            if "upload" in results
            else []
        ),
        f"- ingest against pandas: wall {ours.wall_s / pandas.wall_s:.2f}×, "
        f"peak RSS {ours.peak_rss_mb / pandas.peak_rss_mb:.2f}×",
        f"- load average (1 min) before / after the runs: {load[0]:.2f} / {load[1]:.2f} "
        f"on {os.cpu_count()} cores",
    ]
    noisy = max(s.others_cpu_s for s in results.values())
    if noisy > NOISY_CPU_S:
        lines.append(
            f"- ⚠ other processes used up to {noisy:.1f} CPU s during a timed run: wall times "
            "are inflated (CPU s less so); rerun on an idle machine or with --stat best"
        )
    return "\n".join(lines)


def machine_info(csv: Path) -> dict[str, Any]:
    return machine.machine_info(
        ("duckdb", "pandas", "pyarrow", "ratatouille"),
        csv=str(csv.relative_to(HERE.parent)),
        csv_mb=round(csv.stat().st_size / 2**20, 1),
    )


def write_results(
    args: argparse.Namespace, info: dict[str, Any], all_samples: list[Sample], table: str
) -> Path:
    settings = {"sf": args.sf, "repeat": args.repeat, "stat": args.stat}
    return machine.write_results(
        "ingest",
        f"Ingest benchmark: TPC-H SF{args.sf:g} lineitem ({args.stat} of {args.repeat})",
        {"settings": settings, "machine": info, "samples": [asdict(s) for s in all_samples]},
        table,
    )


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    p.add_argument("--repeat", type=int, default=3, help="runs per method (default 3)")
    p.add_argument(
        "--stat",
        choices=("median", "best"),
        default="median",
        help="how repeats are summarised (default median; best resists a busy machine)",
    )
    p.add_argument("--generate", type=Path, metavar="CSV", help=argparse.SUPPRESS)
    p.add_argument("--child", nargs=3, metavar=("METHOD", "CSV", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sf <= 0 or args.repeat < 1:
        p.error("--sf must be > 0 and --repeat >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.generate:
        generate_csv(args.sf, args.generate)
        return
    if args.child:
        method, csv, out = args.child
        run_child(method, Path(csv), Path(out))
        return
    csv = ensure_csv(args.sf)
    warm_page_cache(csv)
    load_before = os.getloadavg()[0]
    samples: list[Sample] = []
    for i in range(args.repeat):
        for method in METHODS:
            s = run_method(method, csv)
            samples.append(s)
            print(
                f"  run {i + 1}/{args.repeat} {method}: {s.wall_s:.2f} s, "
                f"{s.peak_rss_mb:,.0f} MB, CPU {s.cpu_s:.2f} s, {s.rows:,} rows, "
                f"others' CPU {s.others_cpu_s:.1f} s",
                flush=True,
            )
    results = {m: aggregate([s for s in samples if s.method == m], args.stat) for m in METHODS}
    table = render_table(results, (load_before, os.getloadavg()[0]))
    print("\n" + table)
    stem = write_results(args, machine_info(csv), samples, table)
    print(f"\nWritten {stem}.json and {stem}.md")
    rows = {s.rows for s in results.values()}
    expected = SF1_ROWS if args.sf == 1 else None
    if len(rows) != 1 or (expected and rows != {expected}):
        sys.exit(f"Row counts differ (expected {expected or 'equal'}): the comparison is invalid.")


if __name__ == "__main__":
    main()
