"""Sensors: landing files and new bronze batches → silver runs.

Both compare the lake's state with what silver was built from, so a restarted daemon neither
misses nor repeats work, and run keys make a repeated request a no-op.
"""

import json
from collections.abc import Callable, Set

import dagster as dg

from lakehouse import Lakehouse
from lakehouse.layers import Layer
from pipelines.assets.bronze import batch_metadata
from pipelines.assets.silver import SilverConfig
from pipelines.in_flight import runs_in_flight
from pipelines.keys import BRONZE, SILVER, datasets
from pipelines.resources import LakehouseResource

SILVER_OP = "silver__datasets"
LANDING_FILE = "ratatouille/landing_file"


def silver_in_flight(instance: dg.DagsterInstance) -> set[str]:
    """Datasets with a silver run queued or running."""
    return {
        run.tags["dagster/partition"]
        for run in runs_in_flight(instance)
        if SILVER in (run.asset_selection or ()) and "dagster/partition" in run.tags
    }


def _silver_sensor(
    name: str, interval_s: int, description: str
) -> Callable[[Callable[..., dg.SensorResult]], dg.SensorDefinition]:
    """The decorator for a sensor that asks for silver runs, on from the start."""
    return dg.sensor(
        name=name,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        asset_selection=[SILVER],
        description=description,
    )


def bronze_sensor(interval_s: int) -> dg.SensorDefinition:
    @_silver_sensor(
        "bronze_batches",
        interval_s,
        "Notices new bronze batches (upload, landing, CLI) and rebuilds that dataset's silver "
        "table; a new dataset becomes a new partition, no reload needed.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, lakehouse: LakehouseResource
    ) -> dg.SensorResult:
        return bronze_tick(lakehouse.lake, context, silver_in_flight(context.instance))

    return _sensor


def silver_source(lake: Lakehouse, dataset: str) -> str | None:
    """The bronze batch the current silver snapshot was built up to, if any."""
    inputs = lake.built_from(Layer.SILVER, dataset) or {}
    return inputs.get(f"{Layer.BRONZE.value}.{dataset}")


def bronze_tick(
    lake: Lakehouse, context: dg.SensorEvaluationContext, busy: Set[str] = frozenset()
) -> dg.SensorResult:
    reported: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(datasets.name or "datasets"))
    new_partitions, requests, events = [], [], []
    for dataset in lake.bronze_datasets():
        batches = lake.bronze_batches(dataset)
        if not batches:
            continue
        newest = batches[-1].batch_id
        if dataset not in known:
            new_partitions.append(dataset)
        if reported.get(dataset) != newest:  # each batch shows on the bronze asset once
            reported[dataset] = newest
            events.append(
                dg.AssetMaterialization(BRONZE, partition=dataset, metadata=batch_metadata(batches))
            )
        if dataset in busy or silver_source(lake, dataset) == newest:
            continue  # a run in flight will read it, or silver already has it
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
        cursor=json.dumps(reported, sort_keys=True),
        skip_reason=None if requests else "Silver has every bronze batch.",
    )


def landing_sensor(interval_s: int) -> dg.SensorDefinition:
    @_silver_sensor(
        "landing_files",
        interval_s,
        "Ingests each settled file in the landing zone once, and builds its dataset's silver "
        "table in the same run.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, lakehouse: LakehouseResource
    ) -> dg.SensorResult:
        known = set(context.instance.get_dynamic_partitions(datasets.name or "datasets"))
        taken = {
            run.tags[LANDING_FILE]
            for run in runs_in_flight(context.instance)
            if LANDING_FILE in run.tags
        }
        return landing_tick(lakehouse.lake, known, taken)

    return _sensor


def landing_tick(
    lake: Lakehouse, known: Set[str] = frozenset(), taken: Set[str] = frozenset()
) -> dg.SensorResult:
    """`taken`: landing files a run in flight ingests (the upload service's landing watcher
    starts one the moment a file is ready)."""
    ready, settling = lake.pending_landing()
    requests, new = [], set()
    for f in ready:
        if f.key[:200] in taken:
            continue
        dataset = f.destination
        if dataset not in known:
            new.add(dataset)
        requests.append(
            dg.RunRequest(
                run_key=f.fingerprint,  # the same file is never requested twice
                partition_key=dataset,
                asset_selection=[SILVER],
                run_config=dg.RunConfig(ops={SILVER_OP: SilverConfig(landing_file=f.key)}),
                tags={LANDING_FILE: f.key[:200], "ratatouille/dataset": dataset},
            )
        )
    skip = None
    if not requests:
        busy = len(ready)
        skip = (
            f"{busy} file(s) already being ingested by a run."
            if busy
            else f"{len(settling)} file(s) still being written."
            if settling
            else "Landing is empty."
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[datasets.build_add_request(sorted(new))] if new else [],
        skip_reason=skip,
    )
