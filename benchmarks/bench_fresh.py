"""Fresh data: how soon an uploaded file is queryable in silver and in gold.

A fresh lake, a running `DagsterStack` with the pipeline's sensors at their defaults, and the
upload service as `make run` starts it (`ratatouille uploads`, which starts each dataset's
run over Dagster's API). A ~5 MB CSV goes up through a plain tus client (tuspy), again and
again into one dataset; the clock starts when the upload's last byte is acknowledged (and,
separately, when its ingest into bronze is done) and stops when this process's query answers
from the silver snapshot, then the gold one, that the upload's run published. Then three
small files go up together into three datasets: each one's upload → silver, side by side.
Then a file renamed into `landing/` (settle time 1 s): rename → silver and gold.

    python -m benchmarks.bench_fresh [--repeat 5]
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import machine
from benchmarks.bench_pipeline import DATA, e2e_settings, lake_environment

ROWS = 100_000  # ~5 MB
MODEL_SQL = """-- description: Sales per region.
SELECT region, sum(amount) AS amount, count(*) AS sales FROM silver.{table} GROUP BY region
"""
TARGETS = {"silver": 3.0, "gold": 6.0}
POLL_S = 0.02
TIMEOUT_S = 120.0


def write_csv(path: Path, rows: int, seed: int) -> Path:
    regions = ("north", "south", "east", "west")
    lines = ["id,region,amount,note"]
    lines += [
        f"{seed * rows + i},{regions[i % 4]},{i % 997}.25,row {i} of {seed}" for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_uploads(scratch: Path, port: int) -> subprocess.Popen[bytes]:
    log = (scratch / "uploads.log").open("wb")
    cmd = [str(Path(sys.executable).parent / "ratatouille"), "uploads", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=scratch)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit((scratch / "uploads.log").read_text()) from None
            time.sleep(0.1)


def upload(url: str, path: Path, dataset: str) -> tuple[str, float]:
    """(upload id, when its last byte was acknowledged)."""
    from tusclient import client as tus

    up = tus.TusClient(url).uploader(
        str(path), chunk_size=8 * 2**20, metadata={"filename": path.name, "dataset": dataset}
    )
    up.upload()
    return str(up.url).rstrip("/").rsplit("/", 1)[-1], time.perf_counter()


def wait_published(settings: Any, layer: str, table: str, run_id: str | None) -> float:
    """When a query answers from the table's snapshot made by `run_id` (any new one if None)."""
    from lakehouse import Lakehouse, TableNotFoundError

    deadline = time.monotonic() + TIMEOUT_S
    with Lakehouse(settings) as lake:
        while time.monotonic() < deadline:
            try:
                snap = lake.snapshot(layer, table)
                if run_id is None or snap.run_id == run_id:
                    lake.sql(f"SELECT count(*) FROM {layer}.{table}")
                    return time.perf_counter()
            except TableNotFoundError:
                pass
            time.sleep(POLL_S)
    raise SystemExit(f"{layer}.{table} was not published by run {run_id} in {TIMEOUT_S:.0f} s")


def outcome_when(settings: Any, upload_id: str) -> tuple[str, float]:
    """(the upload's run id, how long before now its ingest finished, from its record)."""
    from lakehouse import upload_outcome

    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        o = upload_outcome(settings, upload_id)
        if o.run_error:
            raise SystemExit(f"upload {upload_id}: {o.run_error}")
        if o.run_id and o.finished_at:
            age = time.time() - datetime.fromisoformat(o.finished_at).timestamp()
            return o.run_id, age
        time.sleep(POLL_S)
    raise SystemExit(f"upload {upload_id} started no run")


def one_upload(settings: Any, url: str, csv: Path, dataset: str) -> dict[str, float]:
    import dagster as dg

    from benchmarks.bench_pipeline import run_times
    from pipelines.instance import FINISHED

    upload_id, done = upload(url, csv, dataset)
    offset = time.time() - time.perf_counter()  # Dagster's marks are epoch seconds
    run_id, ingested_age = outcome_when(settings, upload_id)
    ingested = time.perf_counter() - ingested_age
    silver = wait_published(settings, "silver", dataset, run_id)
    gold = wait_published(settings, "gold", f"{dataset}_by_region", run_id)
    with dg.DagsterInstance.get() as instance:
        while (record := instance.get_run_record_by_id(run_id)) is None or (
            record.dagster_run.status not in FINISHED
        ):
            time.sleep(0.1)
        run = run_times(instance, record)
    marks = [
        ingested + offset,
        run.created,
        run.dequeued,
        run.started,
        run.materialized.get("silver/datasets"),
        silver + offset,
    ]
    phases = {}
    if all(m is not None for m in marks):
        labels = ("start call", "queued", "worker start", "silver step", "until queryable")
        phases = {f"{k}_s": b - a for k, a, b in zip(labels, marks[:-1], marks[1:], strict=True)}  # type: ignore[operator]
    return {
        "upload_to_silver_s": silver - done,
        "upload_to_gold_s": gold - done,
        "ingest_s": ingested - done,
        "ingested_to_silver_s": silver - ingested,
        **phases,
    }


def together(settings: Any, url: str, files: dict[str, Path]) -> dict[str, float]:
    """Each file's upload → silver, all uploaded at once."""
    out: dict[str, float] = {}

    def go(dataset: str, path: Path) -> None:
        upload_id, done = upload(url, path, dataset)
        run_id, _ = outcome_when(settings, upload_id)
        out[dataset] = wait_published(settings, "silver", dataset, run_id) - done

    threads = [threading.Thread(target=go, args=item) for item in files.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def landing_drop(settings: Any, csv: Path, dataset: str) -> dict[str, float]:
    from lakehouse import Lakehouse

    folder = Path(Lakehouse(settings).storage.uri(f"landing/{dataset}/x")).parent
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{csv.name}.part"
    shutil.copyfile(csv, part)
    dropped = time.perf_counter()
    part.rename(folder / csv.name)
    silver = wait_published(settings, "silver", dataset, None)
    gold = wait_published(settings, "gold", f"{dataset}_by_region", None)
    return {"drop_to_silver_s": silver - dropped, "drop_to_gold_s": gold - dropped}


def bench(repeat: int) -> dict[str, Any]:
    from pipelines.serve import DagsterStack, free_port

    (DATA / "runs").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="fresh-", dir=DATA / "runs"))
    try:
        settings = e2e_settings(scratch)
        datasets = ["sales", "a", "b", "c", "dropped"]
        for d in datasets:
            (scratch / "models" / f"{d}_by_region.sql").write_text(MODEL_SQL.format(table=d))
        port, dagster_port = free_port(), free_port()
        settings = settings.model_copy(
            update={"dagster_url": f"http://127.0.0.1:{dagster_port}", "sensor_interval_s": 5}
        )
        with lake_environment(settings, scratch), DagsterStack(settings, port=dagster_port):
            uploads = start_uploads(scratch, port)
            url = f"http://127.0.0.1:{port}/files/"
            try:
                csv = write_csv(scratch / "sales.csv", ROWS, 0)
                print(f"  {csv.stat().st_size / 2**20:.1f} MB CSV, {repeat} uploads", flush=True)
                singles = []
                for i in range(repeat):
                    s = one_upload(settings, url, csv, "sales")
                    singles.append(s)
                    print(f"  upload {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in s.items()))
                small = {d: write_csv(scratch / f"{d}.csv", 1_000 * (n + 1), n) for n, d in
                         enumerate(("a", "b", "c"))}  # fmt: skip
                three = together(settings, url, small)
                print("  three at once: " + ", ".join(f"{k} {v:.2f} s" for k, v in three.items()))
                drop = landing_drop(settings, csv, "dropped")
                print("  landing drop: " + ", ".join(f"{k} {v:.2f}" for k, v in drop.items()))
            finally:
                uploads.terminate()
                uploads.wait(20)
        return {"singles": singles, "three_at_once": three, "landing_drop": drop,
                "csv_mb": round(csv.stat().st_size / 2**20, 2)}  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def table(result: dict[str, Any]) -> str:
    singles = result["singles"]
    rows = ["| from → to | median s | runs | target |", "| --- | ---: | --- | --- |"]
    for key, label, target in (
        ("upload_to_silver_s", "upload finished → silver queryable", TARGETS["silver"]),
        ("upload_to_gold_s", "upload finished → gold queryable", TARGETS["gold"]),
        ("ingest_s", "upload finished → ingested (bronze)", None),
        ("ingested_to_silver_s", "ingested → silver queryable", TARGETS["silver"]),
    ):
        values = [s[key] for s in singles]
        med = statistics.median(values)
        verdict = "" if target is None else f"≤ {target:g} s: {'PASS' if med <= target else 'MISS'}"
        rows.append(
            f"| {label} | **{med:.2f}** | {', '.join(f'{v:.2f}' for v in values)} | {verdict} |"
        )
    three = result["three_at_once"]
    rows.append(
        f"| three files at once → each one's silver | {max(three.values()):.2f} (slowest) | "
        + ", ".join(f"{v:.2f}" for v in three.values())
        + " | |"
    )
    drop = result["landing_drop"]
    rows.append(f"| landing rename → silver (settle 1 s) | {drop['drop_to_silver_s']:.2f} | | |")
    rows.append(f"| landing rename → gold (settle 1 s) | {drop['drop_to_gold_s']:.2f} | | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="single uploads (default 5)")
    args = p.parse_args(argv)
    print(f"Fresh data: {args.repeat} uploads of a {ROWS:,}-row CSV", flush=True)
    result = bench(args.repeat)
    text = table(result)
    print("\n" + text)
    payload = {"settings": {"repeat": args.repeat, "rows": ROWS}, "fresh": result}
    payload["machine"] = machine.machine_info(("duckdb", "dagster", "ratatouille"))
    stem = machine.write_results("fresh", f"Fresh data (median of {args.repeat})", payload, text)
    print(f"\nWritten {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
