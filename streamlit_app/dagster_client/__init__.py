"""Dagster's GraphQL API over HTTP: what the app asks Dagster and what it gets back.

`types` holds the answers and errors, `queries` the GraphQL documents, `parse` turns answers
into types, `client` sends the requests. Pages import from here.
"""

from streamlit_app.dagster_client.client import (
    ASSET_JOB,
    LAUNCHED_FROM_TAG,
    LOCATION,
    RELOAD_S,
    REPOSITORY,
    DagsterClient,
)
from streamlit_app.dagster_client.parse import PARTITION_TAG
from streamlit_app.dagster_client.types import (
    IN_FLIGHT,
    AssetCheckStatus,
    AssetInfo,
    DaemonInfo,
    DagsterError,
    DagsterUnavailable,
    RunInfo,
    SensorInfo,
    StepInfo,
)

__all__ = [
    "ASSET_JOB",
    "IN_FLIGHT",
    "LAUNCHED_FROM_TAG",
    "LOCATION",
    "PARTITION_TAG",
    "RELOAD_S",
    "REPOSITORY",
    "AssetCheckStatus",
    "AssetInfo",
    "DaemonInfo",
    "DagsterClient",
    "DagsterError",
    "DagsterUnavailable",
    "RunInfo",
    "SensorInfo",
    "StepInfo",
]
