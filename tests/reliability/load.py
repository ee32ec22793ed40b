"""The concurrent-load workload: simulated app users on one shared Lakehouse, uploaders, and a
pipeline process republishing a gold SQL model through Dagster, each build different.

Torn reads are detectable because every gold build carries a new `tick` (from
`silver.load_tick`, republished before each run): a reader's checksum must equal the checksum
of one snapshot that was actually published, computed from that snapshot's own files.

`python -m tests.reliability.load STOP_FILE OUT_FILE` is the pipeline process: it republishes
until STOP_FILE exists and writes one JSON line per published snapshot to OUT_FILE.
"""

import io
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse import Lakehouse, QueryError, Settings
from lakehouse.duck import parquet_scan
from lakehouse.query import guard
from lakehouse.query.charts import ChartSpec

GOLD = "load_sales"
UPLOADS = "load_uploads"
SEED_ROWS = 10
MODEL = """-- description: Reliability load: sales per day, region and product, scaled by the
-- description: pipeline's tick so that every build publishes different content.
-- key: day, region, product
SELECT s.day, s.region, s.product, sum(s.amount) * t.tick AS amount, count(*) AS sales, t.tick
FROM silver.load_sales AS s
CROSS JOIN silver.load_tick AS t
GROUP BY s.day, s.region, s.product, t.tick
"""
SALES_ROWS = 200_000
# Deterministic silver inputs (no random(): the same lake every run).
SEED_SQL = {
    "load_customers": """
        SELECT range AS customer_id, 'customer ' || range AS name,
               ['north', 'south', 'east', 'west', 'centre'][range % 5 + 1] AS region,
               ['retail', 'smb', 'enterprise'][range % 3 + 1] AS segment
        FROM range(2000)""",
    "load_sales": f"""
        SELECT range AS sale_id, DATE '2025-01-01' + CAST(range % 365 AS INTEGER) AS day,
               CAST(hash(range) % 2000 AS BIGINT) AS customer_id,
               ['north', 'south', 'east', 'west', 'centre'][range % 5 + 1] AS region,
               'p' || (range * 7 % 20) AS product,
               CAST(hash(range, 'amount') % 1000 AS BIGINT) AS amount
        FROM range({SALES_ROWS})""",
}


def checksum_sql(relation: str) -> str:
    """One row that identifies a gold snapshot's content; t0 = t1 unless a read was torn."""
    return (
        "SELECT count(*) AS n, CAST(sum(amount) AS BIGINT) AS total, "
        "bit_xor(hash(day, region, product, amount, sales, tick)) AS h, "
        f"min(tick) AS t0, max(tick) AS t1 FROM {relation}"
    )


def checksum_key(row: dict[str, Any]) -> str:
    return json.dumps([str(row[k]) for k in ("n", "total", "h", "t0", "t1")])


QUERIES = {
    "filter": "SELECT * FROM silver.load_sales WHERE region = 'east' AND amount > 900 "
    "ORDER BY sale_id LIMIT 200",
    "aggregate": "SELECT region, product, count(*) AS n, sum(amount) AS amount "
    "FROM silver.load_sales GROUP BY ALL ORDER BY ALL",
    "join": "SELECT c.segment, s.region, count(*) AS n, avg(s.amount) AS avg_amount "
    "FROM silver.load_sales AS s JOIN silver.load_customers AS c USING (customer_id) "
    "GROUP BY ALL ORDER BY ALL",
    "gold_join": "SELECT g.region, c.segment, sum(g.amount) AS amount FROM gold.load_sales AS g "
    "JOIN (SELECT DISTINCT region, segment FROM silver.load_customers) AS c USING (region) "
    "GROUP BY ALL ORDER BY ALL",
    "window": "SELECT day, amount, sum(amount) OVER (ORDER BY day) AS running "
    "FROM (SELECT day, sum(amount) AS amount FROM gold.load_sales GROUP BY day) ORDER BY day",
    "uploads": f"SELECT upload_id, count(*) AS n FROM bronze.{UPLOADS} GROUP BY ALL",
    "big_result": "SELECT * FROM silver.load_sales",  # past the row cap: truncated, not an error
}
CHARTS = {
    "bar_color": (
        "SELECT * FROM silver.load_sales",
        ChartSpec("bar", x="region", y="amount", aggregate="sum", color="product", top_n=5),
    ),
    "line_month": (
        "SELECT day, amount FROM silver.load_sales",
        ChartSpec("line", x="day", y="amount", aggregate="avg", time_grain="month"),
    ),
    "histogram": ("SELECT amount FROM silver.load_sales", ChartSpec("histogram", x="amount")),
    "scatter": (
        "SELECT sale_id, amount FROM silver.load_sales",
        ChartSpec("point", x="sale_id", y="amount"),
    ),
}
# The gold chart doubles as a torn-read check: its bars add up to one snapshot's total.
GOLD_CHART = ("SELECT * FROM gold.load_sales", ChartSpec("bar", x="region", y="amount"))
HOSTILE = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "COPY (SELECT * FROM gold.load_sales) TO '/tmp/ratatouille-load.csv'",
    "ATTACH '/tmp/ratatouille-load.duckdb' AS x",
    "INSTALL httpfs",
    "SELECT getenv('HOME')",
    "SET memory_limit = '100GB'",
    "SELECT 1; DROP VIEW gold.load_sales",
    "CREATE OR REPLACE VIEW gold.load_sales AS SELECT 1 AS n",
    "SELECT * FROM glob('/**')",
]
# Runs until the time limit stops it (deliberately): a cross join of 10^10 rows.
TOO_SLOW = "SELECT sum(hash(a.range * b.range)) AS h FROM range(100000) AS a, range(100000) AS b"
TOO_SLOW_LIMIT_S = 1.0
TOO_SLOW_EVERY_S = 10.0


def refusal_titles(settings: Settings) -> dict[str, str]:
    """Each hostile query's refusal as the guard words it (so none of them is a mere failure)."""
    titles = {}
    for sql in HOSTILE:
        try:
            guard.check_query(sql, settings.query_layers)
        except QueryError as e:
            titles[sql] = e.title
        else:
            raise AssertionError(f"the guard lets {sql!r} through")
    return titles


def seed(lake: Lakehouse) -> None:
    """Silver inputs, tick 0, the model file and one upload batch, before the load starts."""
    import pyarrow as pa

    for table, sql in SEED_SQL.items():
        lake.publish("silver", table, sql)
    lake.publish("silver", "load_tick", pa.table({"tick": pa.array([0], pa.int64())}))
    lake.settings.models_dir.mkdir(parents=True, exist_ok=True)
    (lake.settings.models_dir / f"{GOLD}.sql").write_text(MODEL)
    lake.ingest(io.BytesIO(upload_csv("seed", SEED_ROWS)), dataset=UPLOADS, filename="seed.csv")


def upload_csv(upload_id: str, rows: int) -> bytes:
    lines = ["upload_id,seq,amount,note"]
    lines += [f'{upload_id},{i},{i * 37 % 1000},"row {i}, of {upload_id}"' for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Sample:
    kind: str
    seconds: float


@dataclass
class Upload:
    upload_id: str
    batch_id: str
    rows: int


@dataclass
class Load:
    """What the users did and saw; threads only append (list.append holds the GIL)."""

    lake: Lakehouse
    seconds: float
    refusals: dict[str, str]
    started: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    gold_reads: list[str] = field(default_factory=list)  # checksum keys
    chart_totals: list[int] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=lambda: {"seed": SEED_ROWS})  # id → rows
    upload_reads: list[tuple[str, int]] = field(default_factory=list)  # (id, rows) as read
    pids: set[int] = field(default_factory=set)
    # Workers that were there before the load (other tests' pools in this session) don't count.
    baseline: set[int] = field(default_factory=set)
    most_workers: int = 0
    worker_mb: list[tuple[float, float]] = field(default_factory=list)  # (s, workers' RSS)

    @property
    def deadline(self) -> float:
        return self.started + self.seconds

    def running(self) -> bool:
        return time.monotonic() < self.deadline and not self.stop.is_set()

    def timed(self, kind: str, what: str, work: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        try:
            out = work()
        except Exception as e:  # noqa: BLE001 -- every failure is counted and reported, not raised
            title, msg = getattr(e, "title", type(e).__name__), getattr(e, "msg", str(e))
            self.errors.append(f"{kind} {what}: {title}: {msg}")
            return None
        self.samples.append(Sample(kind, time.monotonic() - t0))
        return out

    # -- the users --------------------------------------------------------------------------
    def user(self, n: int) -> None:
        rng = random.Random(n)
        last_slow = self.started - TOO_SLOW_EVERY_S + 3.0
        while self.running():
            if n == 0 and time.monotonic() - last_slow >= TOO_SLOW_EVERY_S:
                last_slow = time.monotonic()
                self.too_slow()
                continue
            r = rng.random()
            if r < 0.30:
                self.read_gold()
            elif r < 0.65:
                self.query(rng.choice(sorted(QUERIES)))
            elif r < 0.80:
                self.chart(rng.choice(sorted(CHARTS)))
            elif r < 0.88:
                self.gold_chart()
            else:
                self.hostile(rng.choice(HOSTILE))
            time.sleep(rng.uniform(0.0, 0.1))  # a user reads the result before the next click

    def query(self, name: str) -> None:
        result = self.timed("query", name, lambda: self.lake.query(QUERIES[name]))
        if result is not None and name == "uploads":
            self.upload_reads += [(r["upload_id"], r["n"]) for r in result.table.to_pylist()]

    def chart(self, name: str) -> None:
        sql, spec = CHARTS[name]
        self.timed("chart", name, lambda: self.lake.chart(sql, spec))

    def read_gold(self) -> None:
        gold = checksum_sql(f"gold.{GOLD}")
        result = self.timed("query", "gold", lambda: self.lake.query(gold))
        if result is not None:
            self.gold_reads.append(checksum_key(result.table.to_pylist()[0]))

    def gold_chart(self) -> None:
        data = self.timed("chart", "gold", lambda: self.lake.chart(*GOLD_CHART))
        if data is not None:
            self.chart_totals.append(sum(int(y) for y in data.table.column("y").to_pylist()))

    def hostile(self, sql: str) -> None:
        t0 = time.monotonic()
        try:
            self.lake.query(sql)
        except QueryError as e:
            if e.title != self.refusals[sql]:
                self.errors.append(f"refusal {sql!r}: {e.title}: {e.msg}")
            else:
                self.samples.append(Sample("refusal", time.monotonic() - t0))
            return
        self.errors.append(f"hostile query ran: {sql!r}")

    def too_slow(self) -> None:
        t0 = time.monotonic()
        try:
            self.lake.query(TOO_SLOW, time_limit_s=TOO_SLOW_LIMIT_S)
        except QueryError as e:
            if e.title == "Time limit reached":
                self.samples.append(Sample("time_limit", time.monotonic() - t0))
            else:
                self.errors.append(f"time limit query: {e.title}: {e.msg}")
            return
        self.errors.append("the time-limit query finished within its limit")

    def uploader(self, n: int) -> None:
        rng = random.Random(100 + n)
        i = 0
        while self.running():
            i += 1
            self.upload(f"u{n}-{i}", rng.randint(50, 5000))
            time.sleep(rng.uniform(0.2, 0.8))

    def upload(self, upload_id: str, rows: int) -> None:
        """The upload page's call: `lake.ingest` of a binary stream with a progress callback."""
        data = upload_csv(upload_id, rows)
        self.sent[upload_id] = rows  # before the ingest: a reader may see the batch before we do
        result = self.timed(
            "upload",
            upload_id,
            lambda: self.lake.ingest(
                io.BytesIO(data),
                dataset=UPLOADS,
                mode="append",
                filename=f"{upload_id}.csv",
                who="upload",
                progress=lambda stage, fraction: None,
            ),
        )
        if result is not None:
            self.uploads.append(Upload(upload_id, result.manifest.batch_id, rows))
            if result.rows != rows:
                self.errors.append(f"upload {upload_id}: {result.rows} rows, sent {rows}")

    def watch_workers(self) -> None:
        """Query worker processes of this process (any pool, not only the Lakehouse's own)."""
        while self.running():
            pids = worker_processes() - self.baseline
            self.pids.update(pids)
            self.most_workers = max(self.most_workers, len(pids))
            self.worker_mb.append((time.monotonic() - self.started, sum(map(rss_mb, pids))))
            time.sleep(0.1)

    def run(self, users: int, uploaders: int, main: Callable[[], None] | None = None) -> None:
        """Every actor in its own thread (like Streamlit's script threads); `main` (the browser
        user: Playwright's sync API stays on its own thread) runs here until the deadline."""
        self.started = time.monotonic()
        self.baseline = worker_processes()
        threads = [threading.Thread(target=self.user, args=(n,)) for n in range(users)]
        threads += [threading.Thread(target=self.uploader, args=(n,)) for n in range(uploaders)]
        threads.append(threading.Thread(target=self.watch_workers))
        for t in threads:
            t.start()
        try:
            if main is not None:
                main()
            for t in threads:
                t.join(timeout=max(0.0, self.deadline - time.monotonic()) + 120)
                if t.is_alive():
                    self.errors.append(f"{t.name} still running 120 s after the deadline")
        finally:
            self.stop.set()

    def worker_growth(self) -> str:
        """The pool's resident memory early on and at the end: a leak grows with the load."""

        def peak(lo: float, hi: float) -> float:
            return max((m for t, m in self.worker_mb if lo <= t <= hi), default=0.0)

        s = self.seconds
        return f"{peak(0.1 * s, 0.2 * s):.0f} MB at 10-20 % → {peak(0.9 * s, s):.0f} MB at 90-100 %"

    def latencies(self, kind: str) -> list[float]:
        return [s.seconds for s in self.samples if s.kind == kind]


def worker_processes() -> set[int]:
    """Live `lakehouse.query.worker` children of this process, from /proc."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            mine = fields[0] != "Z" and int(fields[1]) == me
            if mine and b"lakehouse.query.worker" in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
    return found


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def spread(values: list[float]) -> str:
    return f"{len(values)} (p50 {pct(values, 50):.2f} s, p95 {pct(values, 95):.2f} s)"


# -- the pipeline process ---------------------------------------------------------------------
def snapshot_checksum(lake: Lakehouse, snapshot_id: str) -> str:
    """The checksum of one gold snapshot, read from its own files (not through the pointer)."""
    snap = lake.snapshot("gold", GOLD, as_of=snapshot_id)
    scan = parquet_scan([lake.storage.uri(k) for k in snap.files])
    return checksum_key(lake.sql(checksum_sql(scan), views=False).to_pylist()[0])


def republish(stop_file: Path, out_file: Path) -> None:
    """Until stop_file exists: a new tick in silver, then the gold asset by `dg.materialize`."""
    import dagster as dg
    import pyarrow as pa

    from pipelines.definitions import build_defs
    from pipelines.keys import gold_key
    from pipelines.resources import LakehouseResource

    lake = Lakehouse(Settings())
    defs = build_defs(lake.settings)
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    instance = dg.DagsterInstance.ephemeral()
    tick = 0
    with out_file.open("a") as out:
        while not stop_file.exists():
            tick += 1
            t0 = time.monotonic()
            lake.publish("silver", "load_tick", pa.table({"tick": pa.array([tick], pa.int64())}))
            result = dg.materialize(
                assets,
                selection=[gold_key(GOLD)],
                instance=instance,
                resources={"lakehouse": LakehouseResource()},
            )
            meta = result.get_asset_materialization_events()[0].materialization.metadata
            snapshot_id = str(meta["snapshot_id"].value)
            line = {
                "tick": tick,
                "snapshot_id": snapshot_id,
                "run_id": result.run_id,
                "checks_passed": all(e.passed for e in result.get_asset_check_evaluations()),
                "seconds": time.monotonic() - t0,
                "checksum": snapshot_checksum(lake, snapshot_id),
            }
            out.write(json.dumps(line) + "\n")
            out.flush()
    lake.close()


if __name__ == "__main__":
    republish(Path(sys.argv[1]), Path(sys.argv[2]))
