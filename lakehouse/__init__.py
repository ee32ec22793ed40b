"""Ratatouille's lakehouse library: storage, ingest, snapshots, catalog, DuckDB, sandboxed SQL."""

from lakehouse.bronze import SchemaDrift
from lakehouse.catalog import TableInfo
from lakehouse.charts import ChartData, ChartSpec, suggest_chart
from lakehouse.engine import ExportResult, QueryEngine, QueryResult
from lakehouse.errors import (
    ConfigError,
    IngestError,
    LakehouseError,
    QueryError,
    StorageError,
    TableNotFoundError,
)
from lakehouse.ingest import IngestResult
from lakehouse.lake import Lakehouse, connect
from lakehouse.layers import Layer
from lakehouse.settings import Settings
from lakehouse.snapshots import Snapshot

__all__ = [
    "ChartData",
    "ChartSpec",
    "ConfigError",
    "ExportResult",
    "IngestError",
    "IngestResult",
    "Lakehouse",
    "LakehouseError",
    "Layer",
    "QueryEngine",
    "QueryError",
    "QueryResult",
    "SchemaDrift",
    "Settings",
    "Snapshot",
    "StorageError",
    "TableInfo",
    "TableNotFoundError",
    "connect",
    "suggest_chart",
]
