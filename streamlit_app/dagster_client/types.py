"""What the Dagster client returns and raises: runs, assets with their checks, sensors, daemons."""

from dataclasses import dataclass, field
from datetime import datetime

from lakehouse import LakehouseError

IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


class DagsterError(LakehouseError):
    """Dagster answered, but not with what was asked; `title` is a headline, `msg` the detail."""

    default_title = "Dagster could not do this"


class DagsterUnavailable(DagsterError):
    """Nothing (or something that is not Dagster's webserver) answers at the URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"Dagster is not reachable at {url}: {reason}", title="Dagster is not reachable"
        )
        self.url = url
        self.reason = reason

    def __str__(self) -> str:
        return self.msg


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str  # Dagster's RunStatus: QUEUED, STARTED, SUCCESS, FAILURE, CANCELED, ...
    job: str
    assets: list[str]  # "layer/name" of the selected assets; empty for op jobs
    partition: str | None
    created: datetime
    started: datetime | None
    ended: datetime | None
    duration_s: float | None  # from start to end; None until it ends
    error: str | None  # why a failed run failed (the step's own error, not Dagster's wrapper)
    tags: dict[str, str]
    url: str
    parent_run_id: str | None = None  # set on re-executions


@dataclass(frozen=True)
class AssetCheckStatus:
    """The latest evaluation of one Dagster asset check, as the app shows it."""

    name: str
    passed: bool | None  # None: not evaluated for the latest materialization (yet)
    severity: str | None  # ERROR or WARN
    description: str | None  # what the evaluation found, else what the check checks
    when: datetime | None
    partition: str | None = None  # partitioned checks (silver) report one result per dataset
    run_id: str | None = None


@dataclass(frozen=True)
class AssetInfo:
    key: list[str]
    last_materialized: datetime | None
    last_run_id: str | None  # None also for events reported by a sensor, outside any run
    checks: list[AssetCheckStatus]
    partitions: int | None  # None for unpartitioned assets
    description: str | None
    url: str
    partition_keys: list[str] = field(default_factory=list)
    last_partition: str | None = None
    materializable: bool = True  # False for bronze: ingest writes it, a sensor reports it

    @property
    def name(self) -> str:
        return "/".join(self.key)


@dataclass(frozen=True)
class SensorInfo:
    name: str
    status: str  # RUNNING or STOPPED
    last_tick: datetime | None
    last_tick_status: str | None  # SUCCESS, SKIPPED, FAILURE, STARTED
    error: str | None


@dataclass(frozen=True)
class DaemonInfo:
    type: str
    healthy: bool
    last_heartbeat: datetime | None
    error: str | None


@dataclass(frozen=True)
class StepInfo:
    """One gold step (SQL model, notebook or Python asset) as Dagster defines it, with the
    latest run that built it or tried to."""

    key: list[str]
    kinds: frozenset[str]  # {"sql", "duckdb"}, {"ipynb", "duckdb"}, {"python", "duckdb"}
    description: str | None
    inputs: list[str]  # "silver.orders", "gold.revenue_by_month"
    metadata: dict[str, str]  # text, path and URL entries by label (`path`, `notebook`, ...)
    url: str
    last_run_id: str | None = None
    # Dagster's RunStatus of that run, but SUCCESS when it built this step (and failed elsewhere)
    last_run_status: str | None = None
    last_run_time: datetime | None = None  # when it ended, else started, else was created
    last_materialized: datetime | None = None

    @property
    def table(self) -> str:
        return self.key[-1]
