"""Concurrent load: 8 playground users and 2 uploaders on one shared Lakehouse (as the app's
`st.cache_resource` shares it) while a pipeline process republishes a gold model through Dagster,
every build different. Held means: no error but the deliberate refusals and time limits, no torn
read of gold, every upload landed, no worker process left behind.

Latency figures are measured on a 2-core machine that may be running other heavy jobs: they are
reported, never asserted.
"""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from devtools.s3server import S3Server
from lakehouse import Lakehouse, QueryEngine, Settings
from lakehouse.tables import bronze
from pipelines.serve import free_port
from tests.e2e.conftest import browser, streamlit_server
from tests.reliability import load as workload
from tests.reliability.conftest import ROOT, Record, load_seconds
from tests.support.lakedirs import env_vars, lake_dirs

__all__ = ["browser"]

USERS = 8
UPLOADERS = 2
TIMEOUT_S = int(load_seconds() + 180)
# Vacuum runs during the load (no history window): the grace must outlast the time limit, so
# a query that resolved a version just before it was replaced can still read its files.
SETTINGS = {
    "query_time_limit_s": "10",
    "table_history_hours": "0",
    "snapshots_grace_s": "15",
}


def prepare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, keep_storage: bool) -> Settings:
    """A lake under tmp_path, exported as RATATOUILLE_* for the pipeline process and the app."""
    if not keep_storage:
        for key in list(os.environ):
            if key.startswith("RATATOUILLE_"):
                monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    env = {
        **lake_dirs(tmp_path),
        "dagster_url": f"http://127.0.0.1:{free_port()}",  # nothing there: no stray Dagster
        **SETTINGS,
    }
    for name, value in env_vars(env).items():
        monkeypatch.setenv(name, value)
    return Settings()


@contextmanager
def pipeline(tmp_path: Path) -> Iterator[Path]:
    """The republishing process, started once its first build is in; yields its output file."""
    stop, out, log = tmp_path / "stop", tmp_path / "published.jsonl", tmp_path / "pipeline.log"
    with log.open("wb") as log_f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.load", str(stop), str(out)],
            cwd=ROOT,
            env={**os.environ},
            stdout=log_f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and out.read_text().strip()):
            assert proc.poll() is None, f"the pipeline process died:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the pipeline's first build took over 120 s"
            time.sleep(0.2)
        yield out
        stop.touch()
        code = proc.wait(timeout=120)
        assert code == 0, f"the pipeline process failed:\n{log.read_text()[-3000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextmanager
def app_server(tmp_path: Path) -> Iterator[str]:
    """The Streamlit app on the same lake, as `make run` starts it."""
    with streamlit_server(tmp_path) as url:
        yield url
    text = (tmp_path / "streamlit.log").read_text(errors="replace")
    assert "Traceback" not in text, f"the app logged an exception:\n{text[-3000:]}"


def run_in_browser(page: Page, sql: str, rows: int) -> float:
    """Type the query, press Run, wait for the result's row count; seconds from the click."""
    editor = page.get_by_role("textbox", name="SQL")
    editor.fill(sql)
    editor.press("Tab")  # Streamlit takes a text area's value when it loses focus
    page.wait_for_timeout(500)
    t0 = time.monotonic()
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_text(f"{rows} rows in", exact=False).first).to_be_visible(timeout=60_000)
    return time.monotonic() - t0


def browser_user(load: workload.Load, page: Page, url: str, runs: list[float]) -> None:
    """One person in Chromium on the SQL playground, querying gold for the whole load."""
    page.goto(f"{url}/sql_playground")
    i = 0
    try:
        while load.running():
            i += 1
            rows = 100 + i % 800  # a row count of its own, so each run's result is recognisable
            sql = (
                "SELECT g.tick, r.range AS i FROM (SELECT max(tick) AS tick FROM gold.load_sales) "
                f"AS g, range({rows}) AS r"
            )
            runs.append(run_in_browser(page, sql, rows))
            page.wait_for_timeout(500)
    except Exception as e:  # noqa: BLE001 -- reported with the other errors
        load.errors.append(f"browser run {i}: {type(e).__name__}: {e}")


def run_load(
    tmp_path: Path, settings: Settings, seconds: float, browser: Browser | None = None
) -> tuple[workload.Load, list[dict[str, Any]], dict[str, Any]]:
    lake = Lakehouse(settings)  # the app's one shared Lakehouse (st.cache_resource)
    workload.seed(lake)
    load = workload.Load(lake, seconds, workload.refusal_titles(settings))
    fds, mb = workload.open_fds(), workload.rss_mb()
    runs: list[float] = []
    with pipeline(tmp_path) as out:
        if browser is None:
            load.run(USERS, UPLOADERS)
        else:
            with app_server(tmp_path) as url:
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.on("pageerror", lambda e: load.errors.append(f"browser page error: {e}"))
                page.set_default_timeout(60_000)
                try:
                    load.run(USERS, UPLOADERS, lambda: browser_user(load, page, url, runs))
                finally:
                    context.close()
    published = [json.loads(line) for line in out.read_text().splitlines()]
    after = check_after(lake, load)
    after["browser"] = runs
    after["fds"] = (fds, workload.open_fds())
    after["mb"] = (mb, workload.rss_mb())
    return load, published, after


def check_after(lake: Lakehouse, load: workload.Load) -> dict[str, Any]:
    """What the lake says once the load is over; then the pool is closed and must be gone."""
    counted = lake.query(workload.QUERIES["uploads"]).table.to_pylist()
    batches = {b.batch_id: b.rows for b in bronze.require_batches(lake.storage, workload.UPLOADS)}
    lake.close()
    deadline = time.monotonic() + 10
    alive = sorted(load.pids | (workload.worker_processes() - load.baseline))
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        time.sleep(0.1)
    spill = lake.settings.state_dir / "query_tmp"
    return {
        "counted": {r["upload_id"]: r["n"] for r in counted},
        "batches": batches,
        "alive": alive,
        "spill_left": sorted(p.name for p in spill.iterdir()) if spill.exists() else [],
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return pid in workload.worker_processes()  # not a zombie, nor a new process with its pid


def figures(load: workload.Load, published: list[dict[str, Any]], after: dict[str, Any]) -> str:
    """What the load did, for the report (latencies are noisy here: reported, never asserted)."""
    checksums = {p["checksum"] for p in published}
    torn = [r for r in load.gold_reads if r not in checksums]
    out = [
        f"queries {workload.spread(load.latencies('query'))}",
        f"charts {workload.spread(load.latencies('chart'))}",
        f"gold reads {len(load.gold_reads)} + gold charts {len(load.chart_totals)} over "
        f"{len(set(load.gold_reads))} of {len(published)} published snapshots, torn {len(torn)}",
        f"publishes {workload.spread([p['seconds'] for p in published])} (tick + Dagster run)",
        f"uploads {workload.spread(load.latencies('upload'))}, "
        f"{sum(u.rows for u in load.uploads):,} rows, read {len(load.upload_reads)} batch counts "
        "during the load",
        f"refusals {len(load.latencies('refusal'))}, "
        f"time limits {len(load.latencies('time_limit'))}, errors {len(load.errors)}",
        f"workers ≤ {load.most_workers} ({len(load.pids)} pids), left {len(after['alive'])}",
        f"workers' RSS {load.worker_growth()}",
        "test process (the app's role) RSS {:.0f} → {:.0f} MB, open files {} → {}".format(
            *after["mb"], *after["fds"]
        ),
    ]
    if after["browser"]:
        out.append(f"browser runs {workload.spread(after['browser'])}")
    return "; ".join(out)


def verify(
    load: workload.Load, published: list[dict[str, Any]], after: dict[str, Any], settings: Settings
) -> None:
    assert load.errors == [], "\n".join(load.errors[:20])
    checksums = {p["checksum"] for p in published}
    for p in published:
        t0, t1 = json.loads(p["checksum"])[3:]
        assert t0 == t1 == str(p["tick"]), p  # each build carries its own tick
        assert p["checks_passed"], p
    assert len(checksums) == len(published), "two builds published the same content"
    torn = [r for r in load.gold_reads if r not in checksums]
    assert torn == [], f"{len(torn)} gold reads match no published snapshot: {torn[:5]}"
    totals = {int(json.loads(c)[1]) for c in checksums}
    torn_charts = [t for t in load.chart_totals if t not in totals]
    assert torn_charts == [], f"gold chart totals match no published snapshot: {torn_charts[:5]}"
    seen = set(load.gold_reads)
    assert len(published) >= 2 and len(seen) >= 2, (
        f"{len(published)} publishes, {len(seen)} seen: the load never overlapped a republish"
    )
    expected = {u.upload_id: u.rows for u in load.uploads} | {"seed": workload.SEED_ROWS}
    assert after["counted"] == expected
    partial = [(i, n) for i, n in load.upload_reads if load.sent.get(i) != n]
    assert partial == [], f"uploads read while incomplete (id, rows read): {partial[:5]}"
    for u in load.uploads:
        assert after["batches"].get(u.batch_id) == u.rows, u
    assert load.uploads, "no upload finished"
    assert 0 < load.most_workers <= settings.query_workers
    assert after["alive"] == [], f"query workers left running: {after['alive']}"
    assert after["spill_left"] == [], f"spill folders left behind: {after['spill_left']}"
    assert load.latencies("refusal") and load.latencies("time_limit")
    # A handle per query, upload or publish would show as hundreds here; pools stay bounded.
    assert after["fds"][1] - after["fds"][0] < 50, f"open files grew: {after['fds']}"


TRIED = (
    f"{USERS} users (filters, aggregates, joins, charts, gold checksums, hostile SQL, a "
    f"deliberate time limit) + {UPLOADERS} uploaders on one Lakehouse while Dagster "
    "republishes a gold model (different each build), {seconds:g} s on {storage}"
)
HELD = (
    "no errors but refusals/time limits; every gold read equals a published snapshot; "
    "every upload landed with its rows and none was read half-landed; no worker left"
)


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(TIMEOUT_S)
def test_load_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Record, browser: Browser
) -> None:
    settings = prepare(tmp_path, monkeypatch, keep_storage=False)
    seconds = load_seconds()
    row = record(
        TRIED.format(seconds=seconds, storage="local") + ", plus one Chromium user on the app",
        HELD + "; the app answers in the browser throughout",
    )
    load, published, after = run_load(tmp_path, settings, seconds, browser)
    row.figures = figures(load, published, after)
    verify(load, published, after, settings)
    assert after["browser"], "the browser user never got a result"


@pytest.mark.slow
@pytest.mark.s3
@pytest.mark.timeout(TIMEOUT_S)
def test_load_s3(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    record: Record,
    s3_env: dict[str, Any],
    s3_server: S3Server,
) -> None:
    # As `make run-s3` runs the app: playground queries hold the read-only key.
    monkeypatch.setenv("RATATOUILLE_S3_QUERY_ACCESS_KEY", s3_server.readonly_key)
    monkeypatch.setenv("RATATOUILLE_S3_QUERY_SECRET_KEY", s3_server.readonly_secret)
    settings = prepare(tmp_path, monkeypatch, keep_storage=True)
    assert settings.storage == "s3"
    seconds = load_seconds() / 2
    row = record(TRIED.format(seconds=seconds, storage="S3 (SeaweedFS)"), HELD)
    load, published, after = run_load(tmp_path, settings, seconds)
    row.figures = figures(load, published, after)
    verify(load, published, after, settings)


@pytest.mark.timeout(60)
def test_sessions_starting_together_share_one_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    """The app's sessions share one Lakehouse; their first queries can arrive together. Thread
    switches are forced to be frequent so that a check-then-create race shows in 50 rounds."""
    settings = prepare(tmp_path, monkeypatch, keep_storage=False)
    row = record(
        f"50 rounds of {USERS} threads asking a fresh shared Lakehouse for its engine at once",
        "one query pool per Lakehouse (a second pool would exceed query_workers and outlive "
        "close())",
    )
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        pools = [pools_at_first_use(Lakehouse(settings), USERS) for _ in range(50)]
    finally:
        sys.setswitchinterval(switch)
    row.figures = f"most pools in a round {max(pools)}; rounds with two or more " + str(
        sum(p > 1 for p in pools)
    )
    assert max(pools) == 1


def pools_at_first_use(lake: Lakehouse, threads: int) -> int:
    """How many query pools `threads` threads got when they asked at the same moment."""
    start = threading.Barrier(threads)
    engines: list[QueryEngine] = []

    def first_query() -> None:
        start.wait()
        engines.append(lake.engine)

    running = [threading.Thread(target=first_query) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    lake.close()
    return len({id(e) for e in engines})
