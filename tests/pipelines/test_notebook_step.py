"""A notebook step end to end: dagstermill runs `notebooks/steps/product_performance.ipynb`
in a real kernel under `execute_job(reconstructable(...))` (it cannot run under materialize)."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from lakehouse import Lakehouse
from pipelines.definitions import build_defs, notebook_steps_job
from pipelines.keys import gold_key
from tests.pipelines.lake_fixtures import lake
from tests.test_notebooks import (
    CUSTOMERS,
    EXPECTED_PERFORMANCE,
    ORDER_LINES,
    ORDERS,
    PRODUCT_PERFORMANCE_STEP,
    PRODUCTS,
)

__all__ = ["lake"]
pytestmark = pytest.mark.slow
KEY = gold_key("product_performance")


@pytest.mark.parametrize("lake", ["local"], indirect=True)
def test_notebook_step_publishes_its_table(lake: Lakehouse, tmp_path: Path) -> None:
    shutil.copy(PRODUCT_PERFORMANCE_STEP, lake.settings.notebook_steps_dir)
    for name, table in {
        "customers": CUSTOMERS,
        "products": PRODUCTS,
        "orders": ORDERS,
        "order_lines": ORDER_LINES,
    }.items():
        lake.publish("silver", name, table)
    graph = build_defs().resolve_asset_graph()
    assert graph.get(KEY).parent_keys == {dg.AssetKey(["silver", "datasets"])}

    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.reconstructable(notebook_steps_job), instance=instance)
        assert result.success
        run_id = result.run_id
    rows = lake.sql(
        "SELECT * FROM gold.product_performance ORDER BY category, rank_in_category"
    ).to_pylist()
    assert rows == EXPECTED_PERFORMANCE
    snap = lake.snapshot("gold", "product_performance")
    assert snap.run_id == run_id, "the notebook got the Dagster run id"
    assert snap.inputs is not None and set(snap.inputs) == {
        "silver.orders",
        "silver.order_lines",
        "silver.products",
    }
    executed = lake.settings.state_dir / "notebook_runs" / run_id / "product_performance.ipynb"
    assert executed.exists() and b"outputs" in executed.read_bytes()


@pytest.mark.parametrize("lake", ["local"], indirect=True)
def test_failing_notebook_fails_the_run(lake: Lakehouse, tmp_path: Path) -> None:
    shutil.copy(PRODUCT_PERFORMANCE_STEP, lake.settings.notebook_steps_dir)  # no silver tables yet
    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.reconstructable(notebook_steps_job), instance=instance)
        assert not result.success
    with pytest.raises(Exception, match="no table"):
        lake.snapshot("gold", "product_performance")
