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
from pipelines.sensors import LandingFileConfig, bronze_tick, ingest_landing, landing_tick
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
    assert again.run_requests == [] and again.dynamic_partitions_requests == []

    lake.ingest(io.BytesIO(b"id\n2\n"), dataset="orders", filename="o.csv")
    lake.ingest(io.BytesIO(b"x\n1\n"), dataset="customers", filename="c.csv")
    r2 = tick(lake, instance, again.cursor)
    assert sorted(q.partition_key or "" for q in r2.run_requests or []) == ["customers", "orders"]
    keys = {q.run_key for q in r2.run_requests or []}
    assert req.run_key not in keys, "a new batch is a new run key"
    assert json.loads(r2.cursor or "{}").keys() == {"customers", "orders"}


def test_bronze_sensor_is_in_the_definitions_and_running(lake: Lakehouse) -> None:
    defs = build_defs()
    sensors = {s.name: s for s in defs.sensors or []}
    assert set(sensors) == {"bronze_batches", "landing_files", "gold_automation"}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())


def settle(lake: Lakehouse, key: str) -> None:
    if lake.storage.kind == "local":
        t = time.time() - 60
        os.utime(lake.storage.uri(key), (t, t))


def run_landing(key: str) -> dg.ExecuteInProcessResult:
    return ingest_landing.execute_in_process(
        run_config=dg.RunConfig(ops={"ingest_landing_file": LandingFileConfig(key=key)}),
        resources={"lakehouse": LakehouseResource()},
        raise_on_error=False,
    )


def test_landing_sensor_requests_each_file_once_and_the_job_ingests_it(lake: Lakehouse) -> None:
    skip = landing_tick(lake).skip_reason
    assert skip is not None and skip.skip_message == "Landing is empty."
    lake.storage.put_bytes("landing/sales/jan.csv", b"id,amount\n1,2.5\n2,3\n")
    settle(lake, "landing/sales/jan.csv")
    r = landing_tick(lake)
    (req,) = r.run_requests or []
    assert req.run_key and req.run_key.startswith("landing/sales/jan.csv@")
    assert landing_tick(lake).run_requests[0].run_key == req.run_key  # type: ignore[index]

    result = run_landing("landing/sales/jan.csv")
    assert result.success
    assert lake.table("bronze", "sales").rows == 2
    assert landing_tick(lake).run_requests == []


def test_landing_job_rejects_a_bad_file_with_the_reason(lake: Lakehouse) -> None:
    lake.storage.put_bytes("landing/bad.csv", b"\x00\xff\x00 nonsense" * 20)
    result = run_landing("landing/bad.csv")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data is not None
    assert "landing/_rejected/" in str(failure.step_failure_data.user_failure_data.metadata)  # type: ignore[union-attr]
    assert lake.storage.exists("landing/_rejected/bad.csv")
    assert lake.storage.exists("landing/_rejected/bad.csv.error.json")
    assert lake.tables("bronze") == []


def test_file_still_being_written_is_not_picked_up(lake: Lakehouse, monkeypatch) -> None:
    if lake.storage.kind != "local":
        return  # S3 objects appear only once complete
    lake = Lakehouse(lake.settings.replace(landing_settle_s=30), lake.storage)
    lake.storage.put_bytes("landing/growing.csv", b"id\n1\n")
    r = landing_tick(lake)
    assert r.run_requests == [] and "still being written" in str(r.skip_reason)
