"""Silver's deduplication, before and after, in the same run: TPC-H `lineitem` without
duplicates, and the same table with a second batch of repeated and corrected lines.

Every build is a fresh child process (peak RSS from `os.wait4`; spill sampled in the lake's
state folder, as in `benchmarks.scale`), the methods interleaved with the first alternating:

- before: the statement silver ran until now, `SELECT DISTINCT <clean_exprs>` over the bronze
  scan, published the same way on a connection with `duckdb_memory_limit` (4GB);
- rows: `lake.build_silver(dataset)`, exact duplicate rows dropped (the dataset declares no key);
- key: `lake.build_silver` with `key = ["l_orderkey", "l_linenumber"], deduplicate = "key"`;
- before_capped (with `--methods`): before's statement at silver's memory limit (2GB), to
  tell what the limit alone buys;
- window (with `--methods`): the obvious way to keep the newest row per key,
  `QUALIFY row_number() OVER (PARTITION BY key ORDER BY position DESC) = 1`, published the
  same way with silver's memory limit.

After each build another child reads the published table: its rows and an order-independent
checksum (the sum of every row's hash), so before and rows must agree row for row.

    python -m benchmarks.bench_silver [--sf 1] [--repeat 1] [--methods before,rows,key]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import bench_ingest, machine, scale

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"  # gitignored: the CSVs and per-run scratch folders
KEY = ("l_orderkey", "l_linenumber")
DATASETS = {
    "lineitem": "lineitem as ingested (no duplicate rows)",
    "lineitem_dups": "lineitem + a batch repeating every 10th order: odd lines as they were, "
    "even lines with a corrected l_comment",
}
METHODS = {
    "before": "before: `SELECT DISTINCT` (until now)",
    "before_capped": "`SELECT DISTINCT` at silver's memory limit",
    "rows": "after: exact rows (no key)",
    "key": "after: newest per key",
    "window": "`QUALIFY row_number()` per key",
}
BASELINE = "before"
RSS_TARGET_MB = 2.5 * 1000 * 1000 * 1000 / 2**20  # 2.5 GB, in MiB like ru_maxrss


# -- children ------------------------------------------------------------------------------


def child_prepare(root: Path) -> dict[str, Any]:
    """lineitem_dups: lineitem's bronze batch ingested again, then the corrections batch."""
    import duckdb

    from lakehouse import Lakehouse

    lake = Lakehouse()
    (batch,) = lake.bronze_batches("lineitem")
    data = lake.storage.uri(batch.data_key)
    lake.ingest(data, dataset="lineitem_dups", filename="lineitem.parquet")
    fixes = root / "corrections.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN l_linenumber % 2 = 0 THEN 'corrected: ' || "
        f"l_comment ELSE l_comment END AS l_comment) FROM read_parquet("
        f"{bench_ingest.sql_str(data)}) WHERE l_orderkey % 10 = 0) TO "
        f"{bench_ingest.sql_str(fixes)} (FORMAT parquet)"
    )
    row = con.execute(
        f"SELECT count(*), count(*) FILTER (l_linenumber % 2 = 0) FROM "
        f"read_parquet({bench_ingest.sql_str(fixes)})"
    ).fetchone()
    assert row is not None
    lake.ingest(fixes, dataset="lineitem_dups", filename="corrections.parquet")
    fixes.unlink()
    return {"rows": batch.rows, "repeated": int(row[0]), "corrected": int(row[1])}


def child_build(method: str, dataset: str) -> dict[str, Any]:
    from lakehouse import Lakehouse
    from lakehouse.transform.silver import DatasetOptions

    lake = Lakehouse()
    started = time.perf_counter()
    if method in ("rows", "key"):
        options = DatasetOptions(KEY, None, "key") if method == "key" else DatasetOptions()
        result = lake.build_silver(dataset, options=options)
        rows = result.rows
    else:
        rows = publish_sql(lake, dataset, method)
    return {"rows": rows, "elapsed_s": time.perf_counter() - started}


def publish_sql(lake: Any, dataset: str, method: str) -> int:
    """Publish `before(_capped)` or `window` as `build` does (same scan, cleaning, COPY)."""
    from lakehouse import duck
    from lakehouse.layers import quote_ident
    from lakehouse.tables import bronze, snapshots
    from lakehouse.transform import silver

    batches = bronze.require_batches(lake.storage, dataset)
    schema = bronze.common_schema(batches)
    limit = lake.settings.duckdb_memory_limit if method == "before" else None
    con = duck.connect(lake.settings, memory_limit=limit or silver.memory_limit(lake.settings))
    source = bronze.scan_sql(batches, lake.storage.uri)
    try:
        text = [n for n, t in schema if t == "VARCHAR"]
        parsed = silver.detect_temporal(con, source, text)
        exprs = ", ".join(silver.clean_exprs(schema, parsed))
        if method.startswith("before"):
            sql = f"SELECT DISTINCT {exprs} FROM {source}"
        else:
            pos = quote_ident(silver.position_column(schema))
            cols = ", ".join(quote_ident(n) for n, _ in schema)
            source = silver.positioned_scan(batches, lake.storage.uri)
            sql = (
                f"SELECT {cols} FROM (SELECT {exprs}, {pos} FROM {source}) QUALIFY "
                f"row_number() OVER (PARTITION BY {', '.join(KEY)} ORDER BY {pos} DESC) = 1"
            )
        snap = snapshots.publish(lake.settings, lake.storage, con, "silver", dataset, sql)
    finally:
        con.close()
    return snap.rows


def child_check(dataset: str) -> dict[str, Any]:
    """The published table: rows, an order-independent checksum, corrected lines."""
    from lakehouse import Lakehouse

    lake = Lakehouse()
    cols = ", ".join(n for n, _ in lake.snapshot("silver", dataset).schema)
    row = lake.sql(
        f"SELECT count(*) AS n, sum(hash({cols})::HUGEINT) AS checksum, "
        f"count(*) FILTER (l_comment LIKE 'corrected: %') AS corrected FROM silver.{dataset}"
    ).to_pylist()[0]
    return {"rows": row["n"], "checksum": str(row["checksum"]), "corrected": row["corrected"]}


def run_child(args: list[str]) -> None:
    """Entry point inside a child: the stage's report as JSON on the last line."""
    stage = args[0]
    if stage == "prepare":
        report = child_prepare(Path(args[1]))
    elif stage == "build":
        report = child_build(args[1], args[2])
    else:
        report = child_check(args[1])
    print(json.dumps(report))


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Sample:
    dataset: str
    method: str
    wall_s: float  # the child, start to exit
    work_s: float  # what the child timed: the build alone
    cpu_s: float  # the child's CPU time (user + system), start to exit
    peak_rss_mb: float
    spill_mb: float
    rows: int
    checksum: str
    corrected: int
    others_cpu_s: float
    error: str = ""


def child_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.bench_silver", "--child", *args]


def run(cmd: list[str], env: dict[str, str], scratch: Path) -> scale.Watched:
    """`scale.watch` (exact peak RSS, sampled spill), plus the child's own CPU seconds in
    its report: on this shared 2-core box they move far less than wall time."""
    os.sync()  # the previous child's writes are flushed now, not during this one
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = scale.watch(cmd, env, scratch)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    w.report["cpu_s"] = cpu
    if not w.ok and "build" not in cmd:
        sys.exit(f"{' '.join(cmd)} failed: {w.error}")
    return w


def build(dataset: str, method: str, env: dict[str, str], scratch: Path) -> Sample:
    """One build and its check; a build that fails (out of memory) is a sample too."""
    shutil.rmtree(scratch / "lake" / "silver", ignore_errors=True)  # a first snapshot each time
    w = run(child_cmd("build", method, dataset), env, scratch)
    spill = max((s[2] for s in w.samples), default=0.0)
    cpu = w.report["cpu_s"]
    sample = Sample(
        dataset, method, w.wall_s, 0.0, cpu, w.peak_rss_mb, spill, 0, "", 0, w.others_cpu_s
    )
    if not w.ok:
        lines = w.error.strip().splitlines() or ["?"]
        sample.error = next((t for t in reversed(lines) if "Error" in t), lines[-1])[:300]
        return sample
    check = run(child_cmd("check", dataset), env, scratch).report
    assert check["rows"] == w.report["rows"], (check, w.report)
    sample.work_s = w.report["elapsed_s"]
    sample.rows, sample.checksum = int(check["rows"]), check["checksum"]
    sample.corrected = int(check["corrected"])
    return sample


def bench(
    csv: Path, datasets: list[str], methods: list[str], repeat: int
) -> tuple[dict[str, Any], list[Sample]]:
    (DATA / "runs").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="silver-dedup-", dir=DATA / "runs"))
    env = bench_ingest.child_env(scratch)
    samples: list[Sample] = []
    try:
        started = time.perf_counter()
        w = run(bench_ingest.command("ingest", csv, scratch), env, scratch)
        setup = {"rows": w.report["rows"]}
        if "lineitem_dups" in datasets:
            setup = run(child_cmd("prepare", str(scratch)), env, scratch).report
        setup["setup_s"] = time.perf_counter() - started
        print(f"  setup (ingest, duplicates batch): {setup}", flush=True)
        for i in range(repeat):
            for dataset in datasets:
                for method in methods if i % 2 == 0 else methods[::-1]:
                    s = build(dataset, method, env, scratch)
                    samples.append(s)
                    print(
                        f"  run {i + 1}/{repeat} {dataset} {method}: {s.error or 'ok'} "
                        f"{s.work_s:.1f} s ({s.cpu_s:.0f} CPU s), "
                        f"{s.peak_rss_mb:,.0f} MB, spill {s.spill_mb:,.0f} MB, {s.rows:,} rows, "
                        f"others' CPU {s.others_cpu_s:.0f} s",
                        flush=True,
                    )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return setup, samples


# -- reporting -----------------------------------------------------------------------------


def median(samples: list[Sample]) -> Sample:
    """Per-field medians of the runs that succeeded (RSS and spill barely move between runs;
    times do); a failure if none did."""
    ok = [s for s in samples if not s.error] or samples
    first = ok[0]
    return Sample(
        first.dataset,
        first.method,
        statistics.median(s.wall_s for s in ok),
        statistics.median(s.work_s for s in ok),
        statistics.median(s.cpu_s for s in ok),
        statistics.median(s.peak_rss_mb for s in ok),
        statistics.median(s.spill_mb for s in ok),
        first.rows,
        first.checksum,
        first.corrected,
        max(s.others_cpu_s for s in samples),
        first.error,
    )


def expected(setup: dict[str, Any], dataset: str, method: str) -> tuple[int, int]:
    """(rows, corrected lines) each method must publish."""
    if dataset == "lineitem":
        return setup["rows"], 0
    if method in ("key", "window"):
        return setup["rows"], setup["corrected"]
    return setup["rows"] + setup["corrected"], setup["corrected"]  # repeats dropped, fixes kept


def problems(setup: dict[str, Any], results: dict[tuple[str, str], Sample]) -> list[str]:
    out = []
    for (dataset, method), s in results.items():
        if s.error:
            if method != "window":  # the obvious way may fail; silver's own must not
                out.append(f"{dataset} {method} failed: {s.error}")
            continue
        rows, corrected = expected(setup, dataset, method)
        if (s.rows, s.corrected) != (rows, corrected):
            out.append(
                f"{dataset} {method}: {s.rows:,} rows / {s.corrected:,} corrected, "
                f"expected {rows:,} / {corrected:,}"
            )
        base = results.get((dataset, BASELINE))
        if method in ("rows", "before_capped") and base and s.checksum != base.checksum:
            out.append(f"{dataset}: {method} and {BASELINE} publish different rows")
    return out


def table(results: dict[tuple[str, str], Sample]) -> str:
    lines = [
        "| dataset | method | build s | CPU s | peak RSS MB | spill peak MB | rows | "
        "build × before | CPU × before | RSS × before |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (dataset, method), s in results.items():
        base = results.get((dataset, BASELINE), s)
        if s.error:
            lines.append(
                f"| {dataset} | {METHODS[method]} | failed after {s.wall_s:.1f} s: {s.error} | "
                f"| {s.peak_rss_mb:,.0f} | {s.spill_mb:,.0f} | | | | |"
            )
            continue
        lines.append(
            f"| {dataset} | {METHODS[method]} | {s.work_s:.1f} | {s.cpu_s:.0f} | "
            f"{s.peak_rss_mb:,.0f} | {s.spill_mb:,.0f} | {s.rows:,} | "
            f"{s.work_s / base.work_s:.2f} | {s.cpu_s / base.cpu_s:.2f} | "
            f"{s.peak_rss_mb / base.peak_rss_mb:.2f} |"
        )
    peak = max(s.peak_rss_mb for (_, m), s in results.items() if m in ("rows", "key"))
    verdict = "PASS" if peak <= RSS_TARGET_MB else "MISS"
    lines.append(f"\n- after (rows, key) peak RSS ≤ 2.5 GB: {peak:,.0f} MiB → {verdict}")
    noisy = max(s.others_cpu_s for s in results.values())
    if noisy > 2:
        lines.append(
            f"- ⚠ other processes used up to {noisy:.0f} CPU s during one build: build s "
            "is inflated, CPU s much less"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    p.add_argument("--repeat", type=int, default=1, help="runs per method (default 1)")
    p.add_argument("--methods", default="before,rows,key", help=f"of {', '.join(METHODS)}")
    p.add_argument("--datasets", default=",".join(DATASETS), help=f"of {', '.join(DATASETS)}")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        run_child(args.child)
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if (
        not methods
        or not datasets
        or set(methods) - set(METHODS)
        or set(datasets) - set(DATASETS)
        or args.repeat < 1
        or args.sf <= 0
    ):
        p.error("--methods and --datasets name known ones; --repeat ≥ 1; --sf > 0")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(HERE.parent), os.getenv("PYTHONPATH")])
    )
    csv = bench_ingest.ensure_csv(args.sf)
    print(f"Silver dedup: TPC-H SF{args.sf:g} lineitem, methods {', '.join(methods)}", flush=True)
    setup, samples = bench(csv, datasets, methods, args.repeat)
    results = {
        (d, m): median([s for s in samples if (s.dataset, s.method) == (d, m)])
        for d in datasets
        for m in methods
    }
    text = table(results)
    wrong = problems(setup, results)
    text += "".join(f"\n- ✘ {w}" for w in wrong)
    print("\n" + text)
    payload = {
        "settings": {
            "sf": args.sf,
            "repeat": args.repeat,
            "methods": methods,
            "datasets": datasets,
        },
        "machine": machine.machine_info(("duckdb", "pyarrow", "ratatouille"), sf=args.sf),
        "setup": setup,
        "samples": [asdict(s) for s in samples],
    }
    stem = machine.write_results("silver", f"Silver dedup: TPC-H SF{args.sf:g}", payload, text)
    print(f"\nWritten {stem}.json and {stem}.md")
    if wrong:
        sys.exit("Silver dedup: a method published the wrong rows (see above).")


if __name__ == "__main__":
    main()
