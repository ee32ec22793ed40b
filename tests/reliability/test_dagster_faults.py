"""Faults in the orchestrator, on a real code server, webserver and daemon: a run's process
killed in the middle of building gold, then the webserver killed while the app is in use."""

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from tusclient import client as tus

from lakehouse import Lakehouse, Settings, upload_outcome
from lakehouse.storage import staging
from lakehouse.uploads.fresh import upload_launch
from pipelines.serve import DagsterStack, free_port
from streamlit_app.dagster_client import IN_FLIGHT, DagsterClient
from streamlit_app.state import get_lakehouse
from tests.app.appenv import APP, fresh_app
from tests.reliability.conftest import Record
from tests.support.lakedirs import lake_dirs
from tests.support.tus_server import tus_server, wait_done

pytestmark = pytest.mark.slow

ROWS = 600_000
# A join that keeps the gold step busy for seconds, long enough to be killed half-way.
MODEL = """-- description: Events per key, weighted by the first 60k ids (slow on purpose).
SELECT a.k, count(*) AS n, sum(b.id) AS total
FROM silver.events a JOIN silver.events b ON a.k = b.k AND b.id < 60000
GROUP BY a.k
"""
GOLD = ["gold", "slow_totals"]


@pytest.fixture(autouse=True)
def _close_app_lake() -> Iterator[None]:
    """The app's Lakehouse, cached in this process by AppTest, owns query workers: stop them."""
    yield
    get_lakehouse().close()
    st.cache_resource.clear()


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterStack]:
    for key in list(os.environ):
        if key.startswith("DAGSTER_"):
            monkeypatch.delenv(key)
    paths = lake_dirs(tmp_path)
    (paths["models_dir"] / "slow_totals.sql").write_text(MODEL)
    port = free_port()
    # The app under AppTest runs in this process and reads the same RATATOUILLE_* variables.
    fresh_app(tmp_path, monkeypatch, dagster_url=f"http://127.0.0.1:{port}", **paths)
    settings = Settings(sensor_interval_s=1, landing_settle_s=1)
    csv = tmp_path / "events.csv"
    duckdb.sql(
        f"COPY (SELECT i AS id, i % 97 AS k, md5(i::VARCHAR) AS s FROM range({ROWS}) t(i)) "
        f"TO '{csv}'"
    )
    lake = Lakehouse(settings)
    lake.ingest(csv, dataset="events")
    lake.build_silver("events")
    (model,) = lake.models()
    lake.build_model(model)  # gold is current before Dagster starts: nothing is stale
    lake.close()
    with DagsterStack(settings, port=port) as s:
        yield s


def run_events(stack: DagsterStack, run_id: str) -> list[dict[str, str]]:
    data = stack.graphql(
        """query($id: ID!) { logsForRun(runId: $id) { __typename
             ... on EventConnection { events { __typename
               ... on MessageEvent { message } ... on StepEvent { stepKey } } } } }""",
        {"id": run_id},
    )
    logs = data["data"]["logsForRun"]  # type: ignore[index]
    return list(logs.get("events", []))


def wait_for(what: str, check, timeout_s: float = 90, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


def gold_step_started(stack: DagsterStack, run_id: str) -> int | None:
    """The run worker's pid once the gold step has begun."""
    events = run_events(stack, run_id)
    started = any(e["__typename"] == "ExecutionStepStartEvent" for e in events)
    pids = [
        int(m[1])
        for e in events
        if (m := re.search(r"Started process for run \(pid: (\d+)\)", e.get("message", "")))
    ]
    return pids[0] if started and pids else None


def test_run_killed_mid_asset_then_webserver_down(
    record: Record, stack: DagsterStack, tmp_path: Path
) -> None:
    lake = Lakehouse(Settings())
    client = DagsterClient(stack.url)
    before = lake.snapshot("gold", "slow_totals")
    expected = lake.sql("SELECT * FROM gold.slow_totals ORDER BY k").to_pylist()

    # -- a run's process SIGKILLed while it builds gold ---------------------------------------
    run_id = client.materialize(GOLD)
    pid = wait_for("the gold step to start", lambda: gold_step_started(stack, run_id))
    time.sleep(1.0)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    run = wait_for(
        "the killed run to be marked failed",
        lambda: (r := client.run(run_id)) and r.status not in IN_FLIGHT and r,
    )
    failed_s = time.monotonic() - killed_at
    assert run.status == "FAILURE"
    assert lake.snapshot("gold", "slow_totals").snapshot_id == before.snapshot_id
    assert [s.snapshot_id for s in lake.history("gold", "slow_totals")] == [before.snapshot_id]
    assert lake.sql("SELECT * FROM gold.slow_totals ORDER BY k").to_pylist() == expected

    again = client.reexecute(run_id, from_failure=False)
    rerun = wait_for(
        "the re-run to finish",
        lambda: (r := client.run(again)) and r.status not in IN_FLIGHT and r,
        timeout_s=120,
    )
    assert rerun.status == "SUCCESS"
    after = lake.snapshot("gold", "slow_totals")
    assert after.snapshot_id != before.snapshot_id and after.run_id == again
    assert lake.sql("SELECT * FROM gold.slow_totals ORDER BY k").to_pylist() == expected
    # The killed build's staging (its half-written parquet) went with the re-run's sweep.
    assert not list(staging.root(lake.settings).iterdir())
    record(
        "a Dagster run's process SIGKILLed 1 s into building a gold model",
        "the run is marked FAILURE by the code server and its pool slot freed; gold keeps its "
        "snapshot and answers; a re-execution (the health page's button) succeeds and "
        "publishes; the killed build's staging files are swept",
        f"marked failed {failed_s:.1f} s after the kill",
    )

    # -- the webserver SIGKILLed while the app is in use ----------------------------------
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("app_pages/pipelines.py").run()
    assert not at.exception and not at.error
    web = stack.procs["webserver"]
    os.killpg(web.pid, signal.SIGKILL)
    web.wait()

    at.switch_page("app_pages/upload.py").run()
    assert not at.exception
    more = tmp_path / "more.csv"
    more.write_bytes(b"id,k,s\n1,2,x\n")
    with tus_server(stack.settings, launch=upload_launch) as (url, service):
        uploader = tus.TusClient(url).uploader(
            str(more), metadata={"filename": "more.csv", "dataset": "more"}
        )
        uploader.upload()
        upload_id = str(uploader.url).rstrip("/").rsplit("/", 1)[-1]
        wait_done(service, upload_id)
        deadline = time.monotonic() + 20
        while (outcome := upload_outcome(stack.settings, upload_id)).run_error is None:
            assert time.monotonic() < deadline, "the upload's run was neither started nor refused"
            time.sleep(0.05)
    assert outcome.state == "ingested" and "not reachable" in outcome.run_error
    assert lake.table("bronze", "more").rows == 1

    at.switch_page("app_pages/sql_playground.py").run()
    at.text_area(key="sqlpg_sql").set_value("SELECT sum(n) AS n FROM gold.slow_totals")
    started = time.monotonic()
    at.button(key="sqlpg_sql_run").click().run()
    query_s = time.monotonic() - started
    assert not at.exception and not at.error
    outcome = at.session_state["sqlpg_state"].outcome
    assert outcome.error is None
    assert outcome.result.table["n"][0].as_py() == sum(r["n"] for r in expected)

    started = time.monotonic()
    at.switch_page("app_pages/pipelines.py").run()
    health_s = time.monotonic() - started
    assert not at.exception
    message = at.error[0].value.replace("\\", "")  # the message is shown Markdown-escaped
    assert f"Dagster is not reachable at {stack.url}" in message
    record(
        "the Dagster webserver SIGKILLed while the app is open",
        "an upload still lands in bronze (its record says the run could not start and the "
        "sensors will build it) and the playground still answers; the pipelines page "
        "says Dagster is not reachable at its URL and how to start it",
        f"query {query_s:.1f} s, health page {health_s:.1f} s",
    )
