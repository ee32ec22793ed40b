"""What assets tell the Dagster UI: rows, bytes, Delta version, location, schema, a preview."""

from typing import Any

import dagster as dg
import pyarrow as pa

from lakehouse import Lakehouse, Snapshot

PREVIEW_ROWS = 5
_CELL_CHARS = 40


def snapshot_metadata(lake: Lakehouse, snap: Snapshot) -> dict[str, Any]:
    return {
        "dagster/row_count": snap.rows,
        "bytes": snap.size_bytes,
        "snapshot_id": snap.snapshot_id,  # the Delta version
        "table": f"{snap.layer}.{snap.table}",
        # Where Spark, Trino, Polars or Daft read it (Delta Lake).
        "location": dg.MetadataValue.path(lake.table_uri(snap.layer, snap.table)),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, typ) for name, typ in snap.schema]
        ),
        "preview": dg.MetadataValue.md(markdown_table(lake.read_snapshot_head(snap, PREVIEW_ROWS))),
    }


def markdown_table(table: pa.Table) -> str:
    """A small Arrow table as Markdown (pipes and newlines in values escaped)."""

    def cell(v: object) -> str:
        text = "" if v is None else str(v)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"

    head = "| " + " | ".join(cell(n) for n in table.column_names) + " |"
    rule = "|" + "---|" * table.num_columns
    rows = ["| " + " | ".join(cell(v) for v in row.values()) + " |" for row in table.to_pylist()]
    return "\n".join([head, rule, *rows])
