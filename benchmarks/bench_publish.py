"""Benchmark publishing silver/gold as Delta tables against raw DuckDB `COPY` to Parquet.

One SELECT over TPC-H `lineitem` (SF1), each method in a fresh child process (peak RSS from
`os.wait4`), interleaved, the median counts. Two pairs, each against its own baseline:
- silver's path: `publish` (`snapshots.publish` with SQL over the bronze-like Parquet file:
  DuckDB writes the parts, delta-rs commits them) against `copy` (raw DuckDB `COPY (SELECT ...)
  TO <folder> (FORMAT parquet, COMPRESSION zstd)` with the part size publish uses);
- gold's path: `model` (`Lakehouse.build_model` of a SQL model over `silver.lineitem`: guard,
  locked connection, parts, commit, the model's key check) against `copy_silver` (raw DuckDB
  `COPY` of the same SELECT over the silver table's current files).

    python -m benchmarks.bench_publish [--sf 1] [--repeat 3]
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import bench_ingest, machine
from benchmarks.bench_ingest import measure, sql_str

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
METHODS = {
    "copy": "(a) raw DuckDB `COPY (SELECT) TO` Parquet",
    "publish": "(b) `publish` SQL → Delta commit (silver's path), vs (a)",
    "copy_silver": "(c) raw DuckDB `COPY` of the model's SELECT over silver's files",
    "model": "(d) `build_model`: locked connection → parts → Delta commit, vs (c)",
}
BASELINE = {"publish": "copy", "model": "copy_silver"}
MODEL = (
    "SELECT *, l_extendedprice * (1 - l_discount) AS revenue FROM silver.lineitem "
    "WHERE l_shipdate >= DATE '1993-01-01'"
)
TARGET = 1.15
# A SELECT with real work in it: every column, a computed one, a filter.
SELECT = (
    "SELECT *, l_extendedprice * (1 - l_discount) AS revenue FROM read_parquet({src}) "
    "WHERE l_shipdate >= DATE '1993-01-01'"
)


def ensure_source(sf: float) -> Path:
    src = DATA / f"sf{sf:g}" / "lineitem.parquet"
    if src.is_file():
        return src
    csv = bench_ingest.ensure_csv(sf)
    import duckdb

    con = duckdb.connect()
    part = src.with_suffix(".partial")
    con.execute(
        f"COPY (SELECT * FROM read_csv({sql_str(csv)})) TO {sql_str(part)} (FORMAT parquet)"
    )
    con.close()
    part.replace(src)
    return src


def ensure_silver(src: Path) -> Path:
    """A lake with `silver.lineitem` (the source published once); models read it."""
    lake_root = DATA / "publish-lake"
    if not (lake_root / "silver" / "lineitem" / "_delta_log").is_dir():
        from lakehouse import Lakehouse, Settings

        with Lakehouse(Settings(lake_root=lake_root, state_dir=DATA / "publish-state")) as lake:
            lake.publish("silver", "lineitem", f"SELECT * FROM read_parquet({sql_str(src)})")
    return lake_root


def child(method: str, src: Path, scratch: Path) -> None:
    """Inside the measured child: one method, then a JSON line with rows and elapsed time."""
    from lakehouse import Lakehouse, Settings, duck
    from lakehouse.tables import snapshots
    from lakehouse.transform import models

    settings = Settings()
    lake = Lakehouse(settings)
    started = time.perf_counter()
    if method in ("copy", "copy_silver"):
        con = duck.connect(settings)
        if method == "copy":
            query = SELECT.format(src=sql_str(src))
        else:
            scan = lake.table("silver", "lineitem").scan_sql
            query = MODEL.replace("silver.lineitem", scan)
        out = scratch / "copy"
        rows = con.execute(
            f"COPY ({query}) TO {sql_str(out)} (FORMAT parquet, COMPRESSION zstd, "
            f"FILE_SIZE_BYTES '{snapshots.PART_SIZE}', FILENAME_PATTERN 'part-{{i}}')"
        ).fetchall()[0][0]
    elif method == "publish":
        query = SELECT.format(src=sql_str(src))
        rows = lake.publish("silver", "published", query).rows
    else:
        model = models.parse("lineitem_revenue", MODEL, layers=settings.query_layers)
        rows = lake.build_model(model).snapshot.rows
    print(json.dumps({"rows": int(rows), "elapsed_s": time.perf_counter() - started}))


def run(method: str, src: Path, lake_root: Path) -> dict[str, Any]:
    (DATA / "runs").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"publish-{method}-", dir=DATA / "runs"))
    try:
        module = __spec__.name if __spec__ else "benchmarks.bench_publish"
        cmd = [sys.executable, "-m", module, "--child", method, str(src), str(scratch)]
        env = bench_ingest.child_env(scratch) | {"RATATOUILLE_LAKE_ROOT": str(lake_root)}
        wall, rss, others, out = measure(cmd, scratch, env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = json.loads(out.strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "work_s": report["elapsed_s"],
        "rss_mb": rss,
        "rows": report["rows"],
        "others_cpu_s": others,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sf", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--child", nargs=3, metavar=("METHOD", "SRC", "SCRATCH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    src = ensure_source(args.sf)
    lake_root = ensure_silver(src)
    bench_ingest.warm_page_cache(src)
    samples: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for i in range(args.repeat):
        for m in METHODS:  # interleaved: drift on the machine hits every method alike
            samples[m].append(run(m, src, lake_root))
            print(f"  {i + 1}/{args.repeat} {m}: {samples[m][-1]['wall_s']:.2f} s", flush=True)
    med = {
        m: {k: statistics.median(s[k] for s in ss) for k in ("wall_s", "work_s", "rss_mb")}
        | {"rows": ss[0]["rows"], "others_cpu_s": max(s["others_cpu_s"] for s in ss)}
        for m, ss in samples.items()
    }
    if len({v["rows"] for v in med.values()}) != 1:
        sys.exit(f"row counts differ: { {m: v['rows'] for m, v in med.items()} }")
    lines = [
        f"Publish of TPC-H SF{args.sf:g} lineitem ({med['copy']['rows']:,} rows), median of "
        f"{args.repeat}, target ≤ {TARGET}× raw COPY wall time",
        "",
        "| method | wall s | ratio | peak RSS MiB | RSS ratio | others' CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for m, label in METHODS.items():
        r = med[m]
        base = med[BASELINE.get(m, m)]
        ratio = r["wall_s"] / base["wall_s"]
        verdict = "" if m not in BASELINE else (" PASS" if ratio <= TARGET else " MISS")
        lines.append(
            f"| {label} | {r['wall_s']:.2f} | {ratio:.2f}×{verdict} | {r['rss_mb']:,.0f} | "
            f"{r['rss_mb'] / base['rss_mb']:.2f}× | {r['others_cpu_s']:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    info = machine.machine_info(("duckdb", "deltalake", "pyarrow"), sf=args.sf)
    path = machine.write_results(
        "publish", "Publish to Delta", {"machine": info, "results": med}, table
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
