"""Bronze: what was ingested. Written by ingest (upload, landing, CLI), observed by a sensor."""

from typing import Any

import dagster as dg

from lakehouse import BatchManifest
from pipelines.keys import BRONZE, datasets

bronze_datasets = dg.AssetSpec(
    BRONZE,
    description="Files as ingested, one immutable batch per upload, per dataset.",
    partitions_def=datasets,
    group_name="bronze",
    kinds={"parquet"},
)


def batch_metadata(batches: list[BatchManifest]) -> dict[str, Any]:
    """What the sensor reports when a dataset gets a batch: from the manifests only."""
    last = batches[-1]
    return {
        "batches": len(batches),
        "dagster/row_count": sum(b.rows for b in batches),
        "bytes": sum(b.parquet_bytes for b in batches),
        "latest_batch": last.batch_id,
        "latest_source": last.source_name,
        "latest_rows": last.rows,
        "ingested_by": last.ingested_by,
        "schema_drift": last.drift.describe(),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, typ) for name, typ in last.schema]
        ),
    }
