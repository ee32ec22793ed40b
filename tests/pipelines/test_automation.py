"""Gold follows silver: declarative automation, and the freshness backstop for what it misses."""

import io
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from lakehouse import Lakehouse
from pipelines.automation import GOLD_FOLLOWS_INPUTS
from pipelines.definitions import build_defs
from pipelines.freshness import freshness_tick
from pipelines.keys import SILVER, gold_key
from pipelines.resources import LakehouseResource
from tests.pipelines.lake_fixtures import ORDERS_MODEL, instance, lake

__all__ = ["instance", "lake"]
REVENUE = gold_key("revenue")
INPUTS: dict[str, tuple[tuple[str, str], ...]] = {"revenue": (("silver", "orders"),)}


def materialize(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None
) -> None:
    defs = build_defs()
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition | dg.AssetSpec)]
    dg.materialize(
        assets,
        selection=[key],
        partition_key=partition,
        instance=instance,
        resources={"lakehouse": LakehouseResource()},
    )


def seed(lake: Lakehouse, instance: dg.DagsterInstance) -> None:
    (lake.settings.models_dir / "revenue.sql").write_text(ORDERS_MODEL)
    lake.ingest(
        io.BytesIO(b"customer_id,amount,status\n1,2,completed\n"),
        dataset="orders",
        filename="o.csv",
    )
    instance.add_dynamic_partitions("datasets", ["orders"])


@pytest.mark.parametrize("lake", ["local"], indirect=True)
def test_automation_requests_gold_when_silver_updates(
    lake: Lakehouse, instance: dg.DagsterInstance
) -> None:
    seed(lake, instance)
    defs = build_defs()
    only = dg.AssetSelection.assets(REVENUE)
    first = dg.evaluate_automation_conditions(defs, instance, asset_selection=only)
    assert first.get_num_requested(REVENUE) == 0, "no silver yet: nothing to build from"
    materialize(instance, SILVER, "orders")
    second = dg.evaluate_automation_conditions(
        defs, instance, asset_selection=only, cursor=first.cursor
    )
    assert second.get_num_requested(REVENUE) == 1
    materialize(instance, REVENUE)
    third = dg.evaluate_automation_conditions(
        defs, instance, asset_selection=only, cursor=second.cursor
    )
    assert third.get_num_requested(REVENUE) == 0


def test_every_gold_asset_follows_its_inputs(lake: Lakehouse) -> None:
    (lake.settings.models_dir / "revenue.sql").write_text(ORDERS_MODEL)
    graph = build_defs().resolve_asset_graph()
    gold = [k for k in graph.get_all_asset_keys() if k.path[0] == "gold"]
    assert gold
    assert all(graph.get(k).automation_condition == GOLD_FOLLOWS_INPUTS for k in gold)


def test_freshness_backstop(lake: Lakehouse, instance: dg.DagsterInstance) -> None:
    seed(lake, instance)
    later = datetime.now(UTC) + timedelta(minutes=1)

    def tick(now: datetime = later, busy: frozenset[dg.AssetKey] = frozenset()) -> dg.SensorResult:
        return freshness_tick(lake, INPUTS, set(busy), grace_s=15, now=now)

    assert tick().run_requests == [], "no silver.orders yet"
    materialize(instance, SILVER, "orders")
    never_built = tick()
    assert [r.asset_selection for r in never_built.run_requests or []] == [[REVENUE]]
    materialize(instance, REVENUE)
    assert tick().run_requests == []
    skip = tick().skip_reason
    assert skip is not None and skip.skip_message == "Gold is fresh."

    # Silver changes after gold was built (the update automation can miss).
    lake.ingest(
        io.BytesIO(b"customer_id,amount,status\n2,3,completed\n"),
        dataset="orders",
        filename="o.csv",
    )
    materialize(instance, SILVER, "orders")
    soon = tick(now=datetime.now(UTC))
    assert soon.run_requests == [], "automation gets the first go"
    assert "Waiting for automation: revenue" in str(soon.skip_reason)
    stale = tick()
    (req,) = stale.run_requests or []
    assert req.asset_selection == [REVENUE]
    assert tick().run_requests[0].run_key == req.run_key, "one request per input state"  # type: ignore[index]
    assert tick(busy=frozenset({REVENUE})).run_requests == [], "a run is in flight"
    assert req.run_key != (never_built.run_requests or [])[0].run_key
