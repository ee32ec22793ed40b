"""Ratatouille's lakehouse library: storage, bronze ingest, snapshots, catalog, DuckDB."""

from lakehouse.bronze import SchemaDrift
from lakehouse.catalog import TableInfo
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
    "ConfigError",
    "IngestError",
    "IngestResult",
    "Lakehouse",
    "LakehouseError",
    "Layer",
    "QueryError",
    "SchemaDrift",
    "Settings",
    "Snapshot",
    "StorageError",
    "TableInfo",
    "TableNotFoundError",
    "connect",
]
