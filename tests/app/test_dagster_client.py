"""The Dagster client against a real webserver and daemon (tests/app/dagster_fixtures.py)."""

import subprocess
import sys
import time
from datetime import timedelta

import pytest

from pipelines.serve import free_port
from streamlit_app.dagster_client import (
    LAUNCHED_FROM_TAG,
    DagsterClient,
    DagsterError,
    DagsterUnavailable,
)
from tests.app.dagster_fixtures import DagsterApp


def test_the_client_does_not_load_dagster() -> None:
    """import-linter checks the imports in the code; this, the modules actually loaded."""
    code = (
        "import sys, streamlit_app.dagster_state, streamlit_app.components.health; "
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('dagster')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_ping(dagster_app: DagsterApp) -> None:
    assert dagster_app.client.ping()


def test_unreachable_url_fails_fast_and_says_where() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    client = DagsterClient(url, timeout_s=2)
    started = time.monotonic()
    assert not client.ping()
    with pytest.raises(DagsterUnavailable) as caught:
        client.runs()
    assert time.monotonic() - started < 2
    assert str(caught.value).startswith(f"Dagster is not reachable at {url}: ")
    assert caught.value.title == "Dagster is not reachable"


@pytest.mark.slow
def test_runs_report_status_duration_assets_and_partition(dagster_app: DagsterApp) -> None:
    runs = dagster_app.client.runs()
    silver = [r for r in runs if r.assets == ["silver/datasets"]]
    assert silver[-1].status == "SUCCESS"
    assert silver[-1].partition == "orders"
    assert silver[-1].tags["dagster/sensor_name"] == "bronze_batches"
    assert any("gold/customer_revenue" in r.assets for r in runs)
    for run in runs:
        if run.status == "SUCCESS":
            assert run.started and run.ended and run.duration_s is not None
            assert run.created <= run.started <= run.ended
            assert run.duration_s == pytest.approx((run.ended - run.started).total_seconds())
            assert run.url == f"{dagster_app.stack.url}/runs/{run.run_id}"
            assert run.error is None
    assert [r.created for r in runs] == sorted((r.created for r in runs), reverse=True)


@pytest.mark.slow
def test_runs_filter_by_status_tags_and_time(dagster_app: DagsterApp) -> None:
    client = dagster_app.client
    assert {r.status for r in client.runs(statuses=["SUCCESS"])} == {"SUCCESS"}
    tagged = client.runs(tags={"ratatouille/dataset": "orders"})
    assert tagged and all(r.tags["ratatouille/dataset"] == "orders" for r in tagged)
    assert len(client.runs(limit=1)) == 1

    first_silver = [r for r in client.runs() if r.assets == ["silver/datasets"]][-1]
    since = first_silver.created + timedelta(milliseconds=1)
    later = client.runs(since=since)
    assert later, "the gold run came after the first silver run"
    assert first_silver.run_id not in {r.run_id for r in later}
    assert all(r.created >= since for r in later)

    with pytest.raises(DagsterError, match="NOPE"):
        client.runs(statuses=["NOPE"])


@pytest.mark.slow
def test_assets_report_materializations_and_checks(dagster_app: DagsterApp) -> None:
    dagster_app.wait_until_settled()  # a sensor may be rebuilding gold, checks not yet run
    assets = {a.name: a for a in dagster_app.client.assets()}
    gold = assets["gold/customer_revenue"]
    assert gold.description == "Revenue per customer."
    assert gold.last_materialized and gold.last_run_id
    assert gold.partitions is None
    assert gold.url == f"{dagster_app.stack.url}/assets/gold/customer_revenue"
    checks = {c.name: c for c in gold.checks}
    assert checks["not_null_customer_id"].passed is False
    assert checks["not_null_customer_id"].description == "1 row(s) have no customer_id"
    assert checks["not_null_customer_id"].severity == "ERROR"
    assert checks["min_rows_1"].passed is True
    assert checks["min_rows_1"].when is not None

    silver = assets["silver/datasets"]
    assert (silver.partitions, silver.partition_keys, silver.last_partition) == (
        1,
        ["orders"],
        "orders",
    )
    by_name = {c.name: c for c in silver.checks}
    assert by_name["key_unique"].passed is False
    assert by_name["key_unique"].partition == "orders"
    assert by_name["not_empty"].passed is True
    assert by_name["schema_drift"].severity == "WARN"

    bronze = assets["bronze/datasets"]  # reported by a sensor, outside any run
    assert bronze.last_materialized and bronze.last_run_id is None
    assert not bronze.materializable


@pytest.mark.slow
def test_sensors_are_running_and_daemons_healthy(dagster_app: DagsterApp) -> None:
    client = dagster_app.client
    sensors = {s.name: s for s in client.sensors()}
    assert {"bronze_batches", "landing_files", "gold_automation", "gold_freshness"} <= set(sensors)
    assert all(s.status == "RUNNING" and s.last_tick for s in sensors.values())
    daemons = client.daemons()
    assert {"SENSOR", "QUEUED_RUN_COORDINATOR"} <= {d.type for d in daemons}
    assert all(d.healthy and d.last_heartbeat and d.error is None for d in daemons)


@pytest.mark.slow
def test_materialize_launches_a_run_that_succeeds(dagster_app: DagsterApp) -> None:
    client = dagster_app.client
    gold_id = client.materialize(["gold", "daily_orders"])
    silver_id = client.materialize(["silver", "datasets"], "orders")  # one partition
    gold, silver = dagster_app.wait_for_run(gold_id), dagster_app.wait_for_run(silver_id)
    assert (gold.status, gold.assets, gold.partition) == ("SUCCESS", ["gold/daily_orders"], None)
    assert gold.tags[LAUNCHED_FROM_TAG] == "app"
    assert (silver.status, silver.assets, silver.partition) == (
        "SUCCESS",
        ["silver/datasets"],
        "orders",
    )
    with pytest.raises(DagsterError, match="gold/nope") as caught:
        client.materialize(["gold", "nope"])
    assert caught.value.title == "Dagster could not start a run of gold/nope"


@pytest.mark.slow
def test_failed_run_says_why_and_reexecutes_after_a_fix(dagster_app: DagsterApp) -> None:
    client = dagster_app.client
    model = dagster_app.stack.settings.models_dir / "flaky.sql"
    failed = dagster_app.wait_for_run(client.materialize(["gold", "flaky"]))
    assert failed.status == "FAILURE"
    assert failed.error is not None
    # DuckDB's own words, not Dagster's "Error occurred while executing op" wrapper.
    assert failed.error.startswith("Could not build gold.flaky: Binder Error")
    assert '"nope"' in failed.error
    assert failed.run_id in {r.run_id for r in client.runs(statuses=["FAILURE"])}

    model.write_text("SELECT order_id FROM silver.orders\n")
    client.reload()
    rerun = dagster_app.wait_for_run(client.reexecute(failed.run_id))
    assert (rerun.status, rerun.parent_run_id, rerun.assets) == (
        "SUCCESS",
        failed.run_id,
        ["gold/flaky"],
    )
    with pytest.raises(DagsterError, match="not failed"):
        client.reexecute(rerun.run_id)  # from failure, but nothing failed


@pytest.mark.slow
def test_gold_tables_not_from_sql_are_the_python_and_notebook_ones(dagster_app: DagsterApp) -> None:
    """A new SQL model may not take these names; the SQL models themselves stay free to replace."""
    names = dagster_app.client.gold_tables_not_from_sql()
    assert "daily_orders" in names
    assert "customer_revenue" not in names and "flaky" not in names
