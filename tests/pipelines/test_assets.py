"""Silver and gold materialized in process (`dg.materialize`) on both storage backends."""

import io

import dagster as dg
import pytest

from lakehouse import Lakehouse
from pipelines.definitions import build_defs
from pipelines.keys import SILVER, gold_key
from pipelines.resources import LakehouseResource
from tests.pipelines.lake_fixtures import ORDERS_MODEL, instance, lake

__all__ = ["instance", "lake"]

ORDERS = (
    "order_id,customer_id,amount,status,ordered\n"
    "1,10,5.5,completed,2025-01-03\n"
    "2,10,4.5, completed ,01/04/2025\n"
    "2,10,4.5,completed,01/04/2025\n"
    "3,11,7,cancelled,2025-01-05\n"
    "4,12,1,completed,\n"
)


def ingest(lake: Lakehouse, dataset: str, text: str, mode: str = "append") -> None:
    lake.ingest(io.BytesIO(text.encode()), dataset=dataset, filename=f"{dataset}.csv", mode=mode)  # type: ignore[arg-type]


def materialize(
    instance: dg.DagsterInstance,
    selection: list[dg.AssetKey],
    partition: str | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    defs = build_defs()
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition | dg.AssetSpec)]
    return dg.materialize(
        assets,
        selection=selection,
        partition_key=partition,
        instance=instance,
        resources={"lakehouse": LakehouseResource()},
        raise_on_error=raise_on_error,
    )


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_silver_then_gold(lake: Lakehouse, instance: dg.DagsterInstance) -> None:
    (lake.settings.models_dir / "revenue.sql").write_text(ORDERS_MODEL)
    lake.settings.datasets_file.write_text('[datasets.orders]\nkey = "order_id"\n')
    ingest(lake, "orders", ORDERS)
    instance.add_dynamic_partitions("datasets", ["orders"])

    result = materialize(instance, [SILVER], "orders")
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["dagster/row_count"].value == 4
    assert meta["duplicates_dropped"].value == 1
    assert meta["input_rows"].value == 5
    assert "| order_id |" in str(meta["preview"].value)
    assert checks_of(result) == {
        "not_empty": True,
        "schema_drift": True,
        "key_unique": True,
        "key_not_null": True,
    }
    snap = lake.snapshot("silver", "orders")
    assert snap.run_id == result.run_id
    assert dict(snap.schema)["ordered"] == "DATE"

    result = materialize(instance, [gold_key("revenue")])
    assert result.success
    assert checks_of(result) == {
        "min_rows_1": True,
        "unique_customer_id": True,
        "not_null_customer_id": True,
    }
    got = lake.sql("SELECT * FROM gold.revenue ORDER BY customer_id").to_pylist()
    assert got == [
        {"customer_id": 10, "revenue": 10.0, "orders": 2},
        {"customer_id": 12, "revenue": 1.0, "orders": 1},
    ]
    assert lake.snapshot("gold", "revenue").run_id == result.run_id


def test_check_failures_are_reported(lake: Lakehouse, instance: dg.DagsterInstance) -> None:
    lake.settings.datasets_file.write_text('[datasets.orders]\nkey = ["order_id"]\n')
    ingest(lake, "orders", "order_id,amount\n1,2\n1,3\n,4\n")
    instance.add_dynamic_partitions("datasets", ["orders"])
    result = materialize(instance, [SILVER], "orders")
    assert result.success  # the table is built; its checks say what is wrong
    assert checks_of(result) == {
        "not_empty": True,
        "schema_drift": True,
        "key_unique": False,
        "key_not_null": False,
    }
    ingest(lake, "orders", "order_id,extra\n5,x\n")  # a new column: drift warns
    result = materialize(instance, [SILVER], "orders")
    drift = next(e for e in result.get_asset_check_evaluations() if e.check_name == "schema_drift")
    assert not drift.passed and drift.severity == dg.AssetCheckSeverity.WARN
    assert "added extra" in (drift.description or "")


def test_failing_model_fails_the_run_and_keeps_the_old_snapshot(
    lake: Lakehouse, instance: dg.DagsterInstance
) -> None:
    model = lake.settings.models_dir / "revenue.sql"
    model.write_text(ORDERS_MODEL)
    ingest(lake, "orders", ORDERS)
    instance.add_dynamic_partitions("datasets", ["orders"])
    materialize(instance, [SILVER], "orders")
    materialize(instance, [gold_key("revenue")])
    before = lake.snapshot("gold", "revenue")

    model.write_text("SELECT customer_id, error('amount is broken: ' || amount) FROM silver.orders")
    result = materialize(instance, [gold_key("revenue")], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "amount is broken" in str(failure.step_failure_data.error)
    assert lake.snapshot("gold", "revenue").snapshot_id == before.snapshot_id
    assert lake.sql("SELECT count(*) AS n FROM gold.revenue").to_pylist() == [{"n": 2}]


def test_invalid_model_file_stays_visible_and_fails_with_its_reason(
    lake: Lakehouse, instance: dg.DagsterInstance
) -> None:
    (lake.settings.models_dir / "oops.sql").write_text("DELETE FROM silver.orders")
    result = materialize(instance, [gold_key("oops")], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "not DELETE" in str(failure.step_failure_data.error)


def test_definitions_follow_the_model_folder(lake: Lakehouse) -> None:
    (lake.settings.models_dir / "a.sql").write_text(
        "-- schedule: 0 6 * * *\nSELECT * FROM silver.x"
    )
    (lake.settings.models_dir / "b.sql").write_text(
        "SELECT * FROM gold.a JOIN bronze.raw USING (id)"
    )
    defs = build_defs()
    graph = defs.resolve_asset_graph()
    assert {gold_key("a"), gold_key("b")} <= set(graph.get_all_asset_keys())
    assert graph.get(gold_key("b")).parent_keys == {
        gold_key("a"),
        dg.AssetKey(["bronze", "datasets"]),
    }
    assert [s.name for s in defs.schedules or []] == ["a_schedule", "housekeeping_schedule"]


@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
def test_executor_is_a_setting(
    lake: Lakehouse, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    monkeypatch.setenv("RATATOUILLE_DAGSTER_EXECUTOR", executor)
    job = build_defs().resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == executor
