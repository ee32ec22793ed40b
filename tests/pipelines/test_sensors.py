"""Sensors with `build_sensor_context`: bronze batches → silver runs, landing files → ingest."""

import io
import json
import os
import time

import dagster as dg

from lakehouse import Lakehouse
from pipelines.definitions import build_defs
from pipelines.keys import BRONZE, SILVER
from pipelines.resources import LakehouseResource
from pipelines.sensors import bronze_tick, landing_tick
from tests.pipelines.lake_fixtures import instance, lake

__all__ = ["instance", "lake"]


def tick(lake: Lakehouse, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    return bronze_tick(lake, dg.build_sensor_context(instance=instance, cursor=cursor))


def test_bronze_sensor_new_dataset_new_batch_and_repeat(
    lake: Lakehouse, instance: dg.DagsterInstance
) -> None:
    first = tick(lake, instance, None)
    assert first.run_requests == [] and first.skip_reason

    lake.ingest(io.BytesIO(b"id\n1\n"), dataset="orders", filename="o.csv")
    r = tick(lake, instance, first.cursor)
    assert [req.partition_key for req in r.run_requests or []] == ["orders"]
    req = (r.run_requests or [])[0]
    assert req.asset_selection == [SILVER]
    assert r.dynamic_partitions_requests[0].partition_keys == ["orders"]  # type: ignore[index]
    (event,) = r.asset_events
    assert isinstance(event, dg.AssetMaterialization)
    assert event.asset_key == BRONZE and event.partition == "orders"
    assert event.metadata["dagster/row_count"].value == 1
    instance.add_dynamic_partitions("datasets", ["orders"])  # what the daemon does with it

    again = tick(lake, instance, r.cursor)
    assert again.dynamic_partitions_requests == [] and again.asset_events == []
    assert [q.run_key for q in again.run_requests or []] == [req.run_key], "same batch, same key"

    lake.ingest(io.BytesIO(b"id\n2\n"), dataset="orders", filename="o.csv")
    lake.ingest(io.BytesIO(b"x\n1\n"), dataset="customers", filename="c.csv")
    r2 = tick(lake, instance, again.cursor)
    assert sorted(q.partition_key or "" for q in r2.run_requests or []) == ["customers", "orders"]
    keys = {q.run_key for q in r2.run_requests or []}
    assert req.run_key not in keys, "a new batch is a new run key"
    assert json.loads(r2.cursor or "{}").keys() == {"customers", "orders"}
    busy = bronze_tick(lake, dg.build_sensor_context(instance=instance), {"orders"})
    assert [q.partition_key for q in busy.run_requests or []] == ["customers"]
    lake.build_silver("orders")
    lake.build_silver("customers")
    done = bronze_tick(lake, dg.build_sensor_context(instance=instance, cursor=r2.cursor))
    assert done.run_requests == [] and done.asset_events == []


def test_bronze_sensor_is_in_the_definitions_and_running(lake: Lakehouse) -> None:
    defs = build_defs()
    sensors = {s.name: s for s in defs.sensors or []}
    assert set(sensors) == {"bronze_batches", "landing_files", "gold_automation", "gold_freshness"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())


def settle(lake: Lakehouse, key: str) -> None:
    if lake.storage.kind == "local":
        t = time.time() - 60
        os.utime(lake.storage.uri(key), (t, t))


def run_silver(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """What the daemon does with a sensor's request, in process."""
    defs = build_defs()
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition | dg.AssetSpec)]
    config = request.run_config
    return dg.materialize(
        assets,
        selection=[SILVER],
        partition_key=request.partition_key,
        run_config=config,
        instance=instance,
        resources={"lakehouse": LakehouseResource()},
        raise_on_error=False,
    )


def test_landing_file_goes_to_bronze_and_silver_in_one_run(
    lake: Lakehouse, instance: dg.DagsterInstance
) -> None:
    skip = landing_tick(lake).skip_reason
    assert skip is not None and skip.skip_message == "Landing is empty."
    lake.storage.put_bytes("landing/sales/jan.csv", b"id,amount\n1,2.5\n2,3\n2,3\n")
    settle(lake, "landing/sales/jan.csv")
    r = landing_tick(lake)
    (req,) = r.run_requests or []
    assert req.run_key and req.run_key.startswith("landing/sales/jan.csv@")
    assert req.partition_key == "sales" and req.asset_selection == [SILVER]
    assert r.dynamic_partitions_requests[0].partition_keys == ["sales"]  # type: ignore[index]
    assert landing_tick(lake, {"sales"}).dynamic_partitions_requests == []
    assert landing_tick(lake).run_requests[0].run_key == req.run_key  # type: ignore[index]
    # A file the landing watcher's run already ingests is left to that run.
    taken = landing_tick(lake, {"sales"}, {"landing/sales/jan.csv"})
    assert taken.run_requests == []
    assert taken.skip_reason is not None
    assert taken.skip_reason.skip_message == "1 file(s) already being ingested by a run."

    instance.add_dynamic_partitions("datasets", ["sales"])
    result = run_silver(instance, req)
    assert result.success
    assert lake.table("bronze", "sales").rows == 3
    assert lake.table("silver", "sales").rows == 2
    keys = {e.asset_key for e in result.get_asset_materialization_events()}
    assert keys == {BRONZE, SILVER}
    assert landing_tick(lake).run_requests == []
    # The bronze sensor sees silver already has the batch: no second run.
    ctx = dg.build_sensor_context(instance=instance)
    assert bronze_tick(lake, ctx).run_requests == []


def test_rejected_landing_file_fails_the_run_with_the_reason(
    lake: Lakehouse, instance: dg.DagsterInstance
) -> None:
    lake.storage.put_bytes("landing/bad.csv", b"\x00\xff\x00 nonsense" * 20)
    settle(lake, "landing/bad.csv")
    (req,) = landing_tick(lake).run_requests or []
    instance.add_dynamic_partitions("datasets", ["bad"])
    result = run_silver(instance, req)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data is not None
    assert "landing/bad.csv was rejected" in str(failure.step_failure_data.error)
    assert lake.storage.exists("landing/_rejected/bad.csv")
    assert lake.storage.exists("landing/_rejected/bad.csv.error.json")
    assert lake.tables("bronze") == []
    assert "bad" not in instance.get_dynamic_partitions("datasets"), "no empty dataset left"


def test_file_still_being_written_is_not_picked_up(lake: Lakehouse) -> None:
    if lake.storage.kind != "local":
        return  # S3 objects appear only once complete
    lake = Lakehouse(lake.settings.replace(landing_settle_s=30), lake.storage)
    lake.storage.put_bytes("landing/growing.csv", b"id\n1\n")
    r = landing_tick(lake)
    assert r.run_requests == [] and "still being written" in str(r.skip_reason)
