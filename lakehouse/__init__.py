"""Ratatouille's lakehouse library: storage, ingest, snapshots, catalog, DuckDB, sandboxed SQL.

The public API is this module's names below, plus the public modules `lakehouse.settings`,
`lakehouse.errors`, `lakehouse.layers`, `lakehouse.passwords`, `lakehouse.query.charts`,
`lakehouse.notebook_runs` and `lakehouse.demo`; `lineage` and `models` are exported as modules.
`pipelines/` and `streamlit_app/` import nothing else from the library (import-linter,
pyproject.toml).
"""

from lakehouse.errors import (
    ConfigError,
    IngestError,
    LakehouseError,
    QueryError,
    StorageError,
    TableNotFoundError,
)
from lakehouse.ingest.landing import PREFIX as LANDING_PREFIX
from lakehouse.ingest.landing import LandingFile
from lakehouse.ingest.load import IngestResult, Progress
from lakehouse.lake import Lakehouse, connect
from lakehouse.layers import Layer
from lakehouse.passwords import upload_token
from lakehouse.query.charts import ChartData, ChartSpec, suggest_chart
from lakehouse.query.engine import QueryEngine
from lakehouse.query.inputs import QueryInputs, query_inputs
from lakehouse.query.results import ExportResult, QueryResult
from lakehouse.query.saved_queries import NAME_MAX as QUERY_NAME_MAX
from lakehouse.query.saved_queries import QueryStore, SavedQuery
from lakehouse.settings import Settings
from lakehouse.steps.context import PromoteError, StepContext, read_events
from lakehouse.steps.promote import Promotion
from lakehouse.tables import lineage
from lakehouse.tables.bronze import BatchManifest, Mode, SchemaDrift
from lakehouse.tables.catalog import TableInfo
from lakehouse.tables.snapshots import Snapshot
from lakehouse.transform import models
from lakehouse.transform.checks import DataCheck, DataCheckResult
from lakehouse.transform.models import Model, notebook_tables
from lakehouse.transform.silver import SilverResult
from lakehouse.uploads.records import UploadNotFound, UploadRecord, UploadStatus, upload_outcome

__all__ = [
    "LANDING_PREFIX",
    "QUERY_NAME_MAX",
    "BatchManifest",
    "ChartData",
    "ChartSpec",
    "ConfigError",
    "DataCheck",
    "DataCheckResult",
    "ExportResult",
    "IngestError",
    "IngestResult",
    "Lakehouse",
    "LakehouseError",
    "LandingFile",
    "Layer",
    "Mode",
    "Model",
    "Progress",
    "PromoteError",
    "Promotion",
    "QueryEngine",
    "QueryError",
    "QueryInputs",
    "QueryResult",
    "QueryStore",
    "SavedQuery",
    "SchemaDrift",
    "Settings",
    "SilverResult",
    "Snapshot",
    "StepContext",
    "StorageError",
    "TableInfo",
    "TableNotFoundError",
    "UploadNotFound",
    "UploadRecord",
    "UploadStatus",
    "connect",
    "lineage",
    "models",
    "notebook_tables",
    "query_inputs",
    "read_events",
    "suggest_chart",
    "upload_outcome",
    "upload_token",
]
