"""Dagster's own storage: pruning of old runs (its home folder and yaml: pipelines/dagster_home.py).

Locally Dagster keeps runs, event logs and schedules in SQLite under `<state_dir>/dagster`;
the compose stack mounts `deploy/dagster/dagster.postgres.yaml` and keeps them in PostgreSQL.
Dagster purges old sensor and schedule ticks itself (`retention:` in the yaml) but never runs
or their event logs: `housekeeping_job` does, daily.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

# Not public API, but the only way to find the per-run SQLite files delete_run leaves behind.
from dagster._core.storage.event_log import SqliteEventLogStorage

from lakehouse import Settings

# Finished for good. Queued, starting, started and canceling runs are never touched.
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def delete_old_runs(
    instance: dg.DagsterInstance, older_than: timedelta, *, batch: int = 100
) -> int:
    """Delete finished runs that ended (or, never started, were created) more than `older_than`
    ago, with their event logs and captured stdout/stderr; return how many went.

    A run that wrote the latest materialization of an asset (or asset partition) stays: Dagster
    works out which partitions exist from those events, so without them a dataset nobody
    re-ingested would turn "missing" as soon as a new dataset arrives, and automation would
    rebuild it. That keeps at most one run per asset partition, however old.
    """
    cutoff = datetime.now(UTC) - older_than
    # A run that ended before the cutoff was created before it too: SQL narrows by creation,
    # the end time decides.
    filters = dg.RunsFilter(created_before=cutoff, statuses=FINISHED)
    deleted = 0
    cursor: str | None = None  # always a run that stays: a deleted one would end the paging
    while True:
        records = instance.get_run_records(filters, limit=batch, cursor=cursor)
        for record in records:  # newest first
            run_id = record.dagster_run.run_id
            if _ended_at(record) < cutoff.timestamp() and not _holds_latest(instance, run_id):
                _delete_run(instance, run_id)
                deleted += 1
            else:
                cursor = run_id
        if len(records) < batch:
            break
    return deleted


def _ended_at(record: dg.RunRecord) -> float:
    if record.end_time is not None:
        return record.end_time
    return record.create_timestamp.timestamp()


def _holds_latest(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether the run wrote the current materialization of any asset partition."""
    events = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for event in events:
        if event.asset_key is None:
            continue
        partitions = [event.partition_key] if event.partition_key is not None else None
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=event.asset_key, asset_partitions=partitions), limit=1
        ).records
        if latest and latest[0].run_id == run_id:
            return True
    return False


def _delete_run(instance: dg.DagsterInstance, run_id: str) -> None:
    instance.delete_run(run_id)
    # delete_run empties but keeps SQLite's per-run event file (one for every run) and
    # the captured stdout/stderr (with the default IO manager's op outputs) under
    # $DAGSTER_HOME/storage/<run_id>.
    events = instance.event_log_storage
    if isinstance(events, SqliteEventLogStorage):
        shard = Path(events.path_for_shard(run_id))
        for path in (shard, shard.with_suffix(".db-wal"), shard.with_suffix(".db-shm")):
            path.unlink(missing_ok=True)
        # As Dagster's own wipe() does: forget the shard was set up, or reading this run's
        # events again in this process fails on a fresh empty file ("no such table").
        events._initialized_dbs.discard(run_id)
    instance.compute_log_manager.delete_logs(prefix=[run_id])


@dg.op(description="Delete finished runs older than RATATOUILLE_RUN_RETENTION_DAYS.")
def delete_old_runs_op(context: dg.OpExecutionContext) -> dg.Output[int]:
    days = Settings().run_retention_days
    deleted = delete_old_runs(context.instance, timedelta(days=days))
    context.log.info(f"Deleted {deleted} runs older than {days} days, with their event logs.")
    return dg.Output(deleted, metadata={"deleted_runs": deleted, "retention_days": days})


@dg.job(
    name="housekeeping",
    description="Keep Dagster's own storage bounded: delete old runs and their event logs.",
    executor_def=dg.in_process_executor,  # one small step: a process of its own costs seconds
)
def housekeeping_job() -> None:
    delete_old_runs_op()


housekeeping_schedule = dg.ScheduleDefinition(
    name="housekeeping_schedule",
    job=housekeeping_job,
    cron_schedule="17 3 * * *",  # daily, off the hour when other schedules tend to start
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
