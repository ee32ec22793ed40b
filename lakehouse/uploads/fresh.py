"""Fresh data in seconds: the moment a file is in bronze (an upload) or ready in `landing/`
(a drop), one Dagster run builds its dataset's silver and every gold table reading it,
started over Dagster's API instead of waiting for a sensor tick (the daemon looks at most
every 5 s). The sensors stay as the backstop: whatever is not started here, they start.
"""

import logging
import threading
import time

from lakehouse.errors import LakehouseError
from lakehouse.ingest import landing
from lakehouse.settings import Settings
from lakehouse.steps.dagster import Dagster, DagsterRefused, DagsterUnreachable
from lakehouse.storage import Storage, open_storage

log = logging.getLogger(__name__)
WATCH_EVERY_S = {"local": 0.5, "s3": 1.0}  # a look at S3 is a LIST request
AWAY_WAIT_S = 10.0  # after Dagster did not take a run, before asking again


class PipelineNotStarted(LakehouseError):
    default_title = "Pipeline run not started"


def build_dataset(settings: Settings, dataset: str, *, landing_file: str | None = None) -> str:
    """Start the run that brings `dataset` to silver and gold; return its id."""
    by = "landing" if landing_file else "upload"
    try:
        return Dagster(settings.dagster_url, timeout_s=5.0).build_dataset(
            dataset, landing_file=landing_file, by=by
        )
    except DagsterUnreachable as e:
        raise PipelineNotStarted(
            f"{e}. The data is safe in the lake; the pipeline's sensors build it once Dagster "
            "is back."
        ) from e
    except DagsterRefused as e:
        raise PipelineNotStarted(f"Dagster refused the run: {e}") from e


def upload_launch(settings: Settings, dataset: str) -> str:
    """The upload service's hook: an upload just landed in `bronze.<dataset>`."""
    return build_dataset(settings, dataset)


class LandingWatcher:
    """Starts a run for each file that becomes ready in `landing/`, once.

    Polls the landing listing (the same one the landing sensor reads, local or S3) every
    half second; a file whose run could not be started is left to the sensor."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.settings = settings
        self.storage = storage or open_storage(settings)
        self.dagster = Dagster(settings.dagster_url, timeout_s=5.0)
        self.started: dict[str, str] = {}  # fingerprint → run id
        self.away_until = 0.0

    def check(self) -> list[str]:
        """Start a run for each newly ready file; return the runs started."""
        if time.monotonic() < self.away_until:
            return []
        ready, _ = landing.pending(self.storage, self.settings.landing_settle_s)
        runs: list[str] = []
        present = {f.fingerprint for f in ready}
        for fingerprint in list(self.started):
            if fingerprint not in present:  # ingested (or gone): forget it
                del self.started[fingerprint]
        for f in ready:
            if f.fingerprint in self.started:
                continue
            try:
                if self.dagster.landing_runs(f.key):  # the sensor got there first
                    self.started[f.fingerprint] = ""
                    continue
                run_id = build_dataset(self.settings, f.destination, landing_file=f.key)
            except (LakehouseError, DagsterUnreachable, DagsterRefused) as e:
                log.warning("landing file %s: no run started (%s); the sensor will", f.key, e)
                self.away_until = time.monotonic() + AWAY_WAIT_S
                return runs
            self.started[f.fingerprint] = run_id
            runs.append(run_id)
            log.info("landing file %s → run %s", f.key, run_id)
        return runs

    def run(self, stop: threading.Event) -> None:
        every = WATCH_EVERY_S.get(self.storage.kind, 1.0)
        while not stop.wait(every):
            try:
                self.check()
            except Exception:  # a bad look must not end the watcher
                log.exception("landing watcher")
