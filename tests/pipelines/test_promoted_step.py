"""A promoted notebook runs as a Dagster step: its checks become asset check results, it
publishes with the run's id, and its metadata gives the asset its edges."""

import dagster as dg
import pytest

from lakehouse import Lakehouse
from pipelines.definitions import build_defs, notebook_steps_job
from pipelines.keys import gold_key
from tests.pipelines.lake_fixtures import lake
from tests.support.notebooks import SETUP, write_notebook

__all__ = ["lake"]
pytestmark = pytest.mark.slow
KEY = gold_key("order_totals")
TOTALS = "SELECT customer, sum(amount) AS total FROM silver.orders GROUP BY 1"


def _promote(lake: Lakehouse, *cells: str) -> None:
    path = write_notebook(lake.settings.notebook_steps_dir.parent / "totals.ipynb", SETUP, *cells)
    lake.promote(path)


def _checks(instance: dg.DagsterInstance, run_id: str) -> dict[str, bool]:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    out = {}
    for r in records:
        event = r.event_log_entry.dagster_event
        assert event is not None
        data = event.event_specific_data
        assert isinstance(data, dg.AssetCheckEvaluation)
        out[data.check_name] = data.passed
    return out


@pytest.mark.parametrize("lake", ["local"], indirect=True)
def test_a_promoted_notebook_runs_with_its_checks(lake: Lakehouse) -> None:
    lake.publish(
        "silver", "orders", "SELECT * FROM (VALUES ('a', 2.0), ('b', 3.0)) t(customer, amount)"
    )
    _promote(
        lake,
        f'snap = lake.publish("gold", "order_totals", "{TOTALS}")',
        "lake.check('totals are positive', 'SELECT min(total) > 0 FROM gold.order_totals')",
        "lake.check('more than two customers', snap.rows > 2)",
        "assert snap.rows == 2, 'two customers'",
    )
    assert build_defs().resolve_asset_graph().get(KEY).parent_keys == {
        dg.AssetKey(["silver", "datasets"])
    }
    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.reconstructable(notebook_steps_job), instance=instance)
        assert result.success  # a failed check is a result, not a failed run
        checks = _checks(instance, result.run_id)
    assert checks == {
        "totals_are_positive": True,
        "more_than_two_customers": False,
        "two_customers": True,
    }
    snap = lake.snapshot("gold", "order_totals")
    assert (snap.rows, snap.run_id) == (2, result.run_id)
    assert snap.inputs is not None and set(snap.inputs) == {"silver.orders"}


@pytest.mark.parametrize("lake", ["local"], indirect=True)
def test_a_failing_assert_fails_the_run_and_its_check(lake: Lakehouse) -> None:
    lake.publish("silver", "orders", "SELECT 'a' AS customer, 1.0 AS amount")
    _promote(
        lake,
        f'snap = lake.publish("gold", "order_totals", "{TOTALS}")',
        "assert lake.read('silver', 'orders').num_rows < 2, 'small input'",
        "lake.check('reached the end', True)",
    )
    lake.publish("silver", "orders", "SELECT 'a' AS customer, 1.0 AS amount FROM range(5)")
    with dg.instance_for_test() as instance:
        result = dg.execute_job(
            dg.reconstructable(notebook_steps_job), instance=instance, raise_on_error=False
        )
        assert not result.success
        checks = _checks(instance, result.run_id)
    assert checks == {"small_input": False, "reached_the_end": False}  # never reached
    executed = lake.settings.state_dir / "notebook_runs" / result.run_id
    assert any(executed.glob("*.events.jsonl"))
