"""Silver: each bronze dataset cleaned, typed and deduplicated, with checks."""

import dagster as dg
from pydantic import Field

from lakehouse import Lakehouse, LakehouseError, SilverResult
from pipelines.assets.bronze import batch_metadata
from pipelines.keys import BRONZE, SILVER, datasets
from pipelines.metadata import snapshot_metadata
from pipelines.resources import LakehouseResource


def _spec(name: str, description: str) -> dg.AssetCheckSpec:
    # Not blocking: in 1.13 a failed blocking check fails the step before its evaluation
    # (with the offending values) is recorded, and the UI would only say "failed".
    return dg.AssetCheckSpec(name, asset=SILVER, description=description, partitions_def=datasets)


SILVER_CHECKS = [
    _spec("not_empty", "The dataset has at least one row."),
    _spec("schema_drift", "Columns added, removed or retyped since the previous snapshot."),
    _spec("key_unique", "The declared key is unique (datasets file)."),
    _spec("key_not_null", "The declared key is never NULL (datasets file)."),
]


class SilverConfig(dg.Config):
    landing_file: str | None = Field(
        None,
        description="A landing file to ingest into the dataset first (set by the landing "
        "sensor: one run from drop to silver instead of two).",
    )


@dg.asset(
    key=SILVER,
    deps=[BRONZE],
    partitions_def=datasets,
    check_specs=SILVER_CHECKS,
    group_name="silver",
    kinds={"duckdb", "parquet"},
    # No pool: one dataset's runs queue behind each other (the run queue's limit on the
    # partition tag), so the last to run saw every batch; datasets build side by side.
)
def silver_datasets(
    context: dg.AssetExecutionContext, config: SilverConfig, lakehouse: LakehouseResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """A bronze dataset's batches unioned by column name, trimmed, blanks as NULL, dates
    parsed, exact duplicates dropped: the clean table analysts start from."""
    lake = lakehouse.lake
    if config.landing_file:
        ingest_landing_file(context, lake, config.landing_file)
    result = lake.build_silver(context.partition_key, run_id=context.run.run_id)
    context.log.info(
        f"silver.{context.partition_key}: {result.rows} rows from {result.input_rows} "
        f"({result.duplicates_dropped} duplicates dropped) in {result.elapsed_s:.1f} s"
    )
    return dg.MaterializeResult(
        metadata={
            **snapshot_metadata(lake, result.snapshot),
            "input_rows": result.input_rows,
            "batches": result.batches,
            "duplicates_dropped": result.duplicates_dropped,
            "null_share": dg.MetadataValue.json(result.null_share),
            "parsed_columns": dg.MetadataValue.json(result.parsed),
            "elapsed_s": round(result.elapsed_s, 3),
        },
        check_results=silver_checks(result),
    )


def ingest_landing_file(context: dg.AssetExecutionContext, lake: Lakehouse, key: str) -> None:
    """Ingest a landing file into this partition's dataset; a rejected file fails the run.
    A file another run already took (the landing watcher and the sensor both saw it) is
    left to that run: this one builds silver from what bronze has."""
    dataset = context.partition_key
    if not lake.storage.exists(key):
        context.log.info(f"{key} is no longer in landing (another run ingested it)")
        return
    try:
        result = lake.ingest_landing(key, context.run.run_id, dataset=dataset)
    except LakehouseError as e:
        if not lake.bronze_batches(dataset):  # nothing ever landed
            context.instance.delete_dynamic_partition(datasets.name or "datasets", dataset)
        raise dg.Failure(
            description=f"{key} was rejected. {e.title}: {e.msg}",
            metadata={"file": key, "moved_to": "landing/_rejected/"},
        ) from e
    context.log_event(
        dg.AssetMaterialization(
            BRONZE,
            partition=dataset,
            metadata=batch_metadata(lake.bronze_batches(dataset)),
        )
    )
    context.log.info(f"{key} → bronze.{dataset}: {result.rows} rows in {result.elapsed_s:.1f} s")


def silver_checks(result: SilverResult) -> list[dg.AssetCheckResult]:
    drift = result.drift
    out = [
        dg.AssetCheckResult(
            check_name="not_empty",
            passed=result.rows > 0,
            metadata={"rows": result.rows},
        ),
        dg.AssetCheckResult(
            check_name="schema_drift",
            passed=not drift.changed,
            severity=dg.AssetCheckSeverity.WARN,
            description=drift.describe(),
            metadata={
                "added": drift.added,
                "removed": drift.removed,
                "retyped": [f"{c}: {a} → {b}" for c, a, b in drift.retyped],
            },
        ),
    ]
    for name, outcome in (
        ("key_unique", result.key_check),
        ("key_not_null", result.not_null_check),
    ):
        if outcome is None:
            out.append(
                dg.AssetCheckResult(
                    check_name=name,
                    passed=True,
                    description="No key declared for this dataset in the datasets file.",
                )
            )
        else:
            out.append(
                dg.AssetCheckResult(
                    check_name=name,
                    passed=outcome.passed,
                    description=outcome.description,
                    metadata={"failures": outcome.failures, "sample": outcome.sample},
                )
            )
    return out
