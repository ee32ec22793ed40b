"""Ratatouille's lakehouse library: storage, ingest, snapshots, catalog, DuckDB, sandboxed SQL."""

from lakehouse.errors import (
    ConfigError,
    IngestError,
    LakehouseError,
    QueryError,
    StorageError,
    TableNotFoundError,
)
from lakehouse.ingest.load import IngestResult
from lakehouse.lake import Lakehouse, connect
from lakehouse.layers import Layer
from lakehouse.query.charts import ChartData, ChartSpec, suggest_chart
from lakehouse.query.engine import QueryEngine
from lakehouse.query.inputs import QueryInputs, query_inputs
from lakehouse.query.results import ExportResult, QueryResult
from lakehouse.settings import Settings
from lakehouse.tables.bronze import SchemaDrift
from lakehouse.tables.catalog import TableInfo
from lakehouse.tables.snapshots import Snapshot

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
    "QueryInputs",
    "QueryResult",
    "SchemaDrift",
    "Settings",
    "Snapshot",
    "StorageError",
    "TableInfo",
    "TableNotFoundError",
    "connect",
    "query_inputs",
    "suggest_chart",
]
