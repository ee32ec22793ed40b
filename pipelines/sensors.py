"""Sensors: new bronze batches → silver runs; landing files → ingest runs.

Cursors are JSON and keyed by what the lake holds (dataset → newest batch id), so a
restarted daemon neither misses nor repeats work; run keys make a repeat request a no-op.
"""

import json

import dagster as dg

from lakehouse import Lakehouse, LakehouseError, Settings, bronze, landing
from lakehouse.layers import Layer
from pipelines.assets.bronze import batch_metadata
from pipelines.keys import BRONZE, SILVER, datasets
from pipelines.resources import LakehouseResource


def bronze_sensor(interval_s: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="bronze_batches",
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        asset_selection=[SILVER],
        description="Notices new bronze batches (upload, landing, CLI) and rebuilds that "
        "dataset's silver table; a new dataset becomes a new partition, no reload needed.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return bronze_tick(Lakehouse(Settings()), context)

    return _sensor


def bronze_tick(lake: Lakehouse, context: dg.SensorEvaluationContext) -> dg.SensorResult:
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(datasets.name or "datasets"))
    new_partitions, requests, events = [], [], []
    for dataset in lake.storage.list_dirs(f"{Layer.BRONZE.value}/"):
        batches = bronze.current_batches(lake.storage, dataset)
        if not batches:
            continue
        newest = batches[-1].batch_id
        if dataset not in known:
            new_partitions.append(dataset)
        if seen.get(dataset) == newest:
            continue
        seen[dataset] = newest
        events.append(
            dg.AssetMaterialization(BRONZE, partition=dataset, metadata=batch_metadata(batches))
        )
        requests.append(
            dg.RunRequest(
                run_key=f"silver:{dataset}:{newest}",
                partition_key=dataset,
                asset_selection=[SILVER],
                tags={"ratatouille/dataset": dataset, "ratatouille/batch": newest},
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[datasets.build_add_request(new_partitions)]
        if new_partitions
        else [],
        asset_events=events,
        cursor=json.dumps(seen, sort_keys=True),
        skip_reason=None if requests else "No new bronze batches.",
    )


class LandingFileConfig(dg.Config):
    key: str


@dg.op(description="Ingest one landing file into bronze; reject it with a report on failure.")
def ingest_landing_file(
    context: dg.OpExecutionContext, config: LandingFileConfig, lakehouse: LakehouseResource
) -> None:
    lake = lakehouse.lake
    try:
        result = landing.ingest_file(lake.settings, lake.storage, config.key, context.run.run_id)
    except LakehouseError as e:
        raise dg.Failure(
            description=f"{e.title}: {e.msg}",
            metadata={"file": config.key, "moved_to": "landing/_rejected/"},
        ) from e
    context.log.info(
        f"{config.key} → bronze.{result.dataset}: {result.rows} rows in {result.elapsed_s:.1f} s"
    )


@dg.job(
    description="Ingest a file dropped into the landing zone.",
    tags={"ratatouille/kind": "landing"},
)
def ingest_landing() -> None:
    ingest_landing_file()


def landing_sensor(interval_s: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_files",
        job=ingest_landing,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Ingests each settled file in the landing zone, once.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return landing_tick(Lakehouse(Settings()))

    return _sensor


def landing_tick(lake: Lakehouse) -> dg.SensorResult:
    ready, settling = landing.pending(lake.storage, lake.settings.landing_settle_s)
    requests = [
        dg.RunRequest(
            run_key=f.fingerprint,  # the same file is never requested twice
            run_config=dg.RunConfig(ops={"ingest_landing_file": LandingFileConfig(key=f.key)}),
            tags={"ratatouille/landing_file": f.key[:200]},
        )
        for f in ready
    ]
    skip = None
    if not requests:
        skip = f"{len(settling)} file(s) still being written." if settling else "Landing is empty."
    return dg.SensorResult(run_requests=requests, skip_reason=skip)
