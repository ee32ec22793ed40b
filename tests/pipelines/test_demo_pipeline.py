"""The demo the product ships: seeded retail data through silver into the two SQL models, the
Python asset and every check, with the repo's own models and datasets file."""

from pathlib import Path

import dagster as dg
import pytest

from lakehouse import Lakehouse, demo
from pipelines.definitions import build_defs
from pipelines.keys import SILVER, gold_key
from pipelines.resources import LakehouseResource
from tests.pipelines.lake_fixtures import instance, lake

__all__ = ["instance", "lake"]
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lake", ["local"], indirect=True)
def test_demo_flows_to_gold_with_every_check_passing(
    lake: Lakehouse, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATATOUILLE_MODELS_DIR", str(ROOT / "pipelines" / "models"))
    monkeypatch.setenv("RATATOUILLE_DATASETS_FILE", str(ROOT / "pipelines" / "datasets.toml"))
    demo.seed(lake)
    instance.add_dynamic_partitions("datasets", list(demo.DATASETS))
    defs = build_defs()
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition | dg.AssetSpec)]
    failed: list[str] = []

    def run(selection: list[dg.AssetKey], partition: str | None = None) -> None:
        result = dg.materialize(
            assets,
            selection=selection,
            partition_key=partition,
            instance=instance,
            resources={"lakehouse": LakehouseResource()},
        )
        failed.extend(
            f"{e.asset_key.to_user_string()} {e.check_name}: {e.description}"
            for e in result.get_asset_check_evaluations()
            if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
        )

    for dataset in demo.DATASETS:
        run([SILVER], dataset)
    run(
        [
            gold_key("revenue_by_month"),
            gold_key("customer_lifetime_value"),
            gold_key("daily_orders"),
        ]
    )
    assert failed == [], "the demo's declared keys and model checks hold"

    # Silver cleaned the dirt: duplicates gone, dates parsed, blanks NULL.
    orders = dict(lake.table("silver", "orders").columns)
    assert orders["order_date"] == "DATE"
    assert lake.table("silver", "orders").rows < lake.table("bronze", "orders").rows
    months = lake.sql(
        "SELECT count(DISTINCT month) AS months, count(DISTINCT category) AS categories, "
        "sum(revenue) > 0 AS revenue FROM gold.revenue_by_month"
    ).to_pylist()[0]
    assert months["months"] >= 24 and months["revenue"]
    assert 6 <= months["categories"] <= 7  # six categories, plus "Unknown" for orphan lines
    clv = lake.sql(
        "SELECT count(*) AS n, count(*) FILTER (orders > 0) AS buyers "
        "FROM gold.customer_lifetime_value"
    ).to_pylist()[0]
    assert clv["n"] == lake.table("silver", "customers").rows
    assert 0 < clv["buyers"] <= clv["n"]
