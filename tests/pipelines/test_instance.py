"""Dagster's own storage: the dagster.yaml templates, SQLite locally, PostgreSQL for compose,
and pruning of old runs on both."""

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.instance.config import dagster_instance_config
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from lakehouse import Settings
from pipelines.dagster_home import TEMPLATES, dagster_home, prepare_home
from pipelines.instance import delete_old_runs, housekeeping_job, housekeeping_schedule
from tests.support.postgres import PostgresServer

LOCAL_YAML = TEMPLATES / "dagster.local.yaml"
POSTGRES_YAML = TEMPLATES / "dagster.postgres.yaml"


@pytest.fixture(autouse=True)
def _no_developer_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The developer's RATATOUILLE_* variables, DAGSTER_HOME and .env must not leak in."""
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_") or key == "DAGSTER_HOME":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def instance(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """A persistent instance from our own dagster.yaml, as webserver and daemon load it."""
    postgres = request.param == "postgres"
    if postgres:
        request.getfixturevalue("pg_env")
    monkeypatch.setenv("DAGSTER_HOME", str(prepare_home(settings, postgres=postgres)))
    with dg.DagsterInstance.get() as instance:
        yield instance


@dg.asset
def tiny() -> dg.MaterializeResult[None]:
    print("tiny ran")  # captured stdout: a file per run under $DAGSTER_HOME/storage locally
    return dg.MaterializeResult(metadata={"rows": 3})


DATASETS = "datasets"


@dg.asset(partitions_def=dg.DynamicPartitionsDefinition(name=DATASETS))
def per_dataset() -> dg.MaterializeResult[None]:
    return dg.MaterializeResult()


@dg.asset
def broken() -> None:
    raise RuntimeError("fails on purpose")


def _materialize(instance: dg.DagsterInstance, asset: dg.AssetsDefinition) -> str:
    return dg.materialize([asset], instance=instance, raise_on_error=False).run_id


def _add_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> str:
    """A run in a given state, as the queue and the daemon leave them (a queued run needs the
    code location it will be launched from)."""
    repo = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("elsewhere"), "__repository__")
    run = dg.DagsterRun(
        job_name="elsewhere", status=status, remote_job_origin=repo.get_job_origin("elsewhere")
    )
    return instance.add_run(run).run_id


# --- the templates ----------------------------------------------------------------------------


@pytest.mark.parametrize("template", [LOCAL_YAML, POSTGRES_YAML], ids=["local", "postgres"])
def test_templates_pass_dagsters_config_schema(template: Path, tmp_path: Path) -> None:
    shutil.copy(template, tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    assert config["concurrency"]["runs"] == {
        "max_concurrent_runs": 4,
        "tag_concurrency_limits": [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ],
    }
    assert config["concurrency"]["pools"] == {"default_limit": 1}
    assert config["retention"]["sensor"]["purge_after_days"]["skipped"] == 1
    assert ("storage" in config) == (template == POSTGRES_YAML)


def test_templates_differ_only_in_storage() -> None:
    local = yaml.safe_load(LOCAL_YAML.read_text())
    postgres = yaml.safe_load(POSTGRES_YAML.read_text())
    storage = postgres.pop("storage")
    assert postgres == local
    db = storage["postgres"]["postgres_db"]
    assert {k: v for k, v in db.items() if k not in ("params", "scheme")} == {
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "db_name": {"env": "DAGSTER_PG_DB"},
        "port": {"env": "DAGSTER_PG_PORT"},
    }


# --- prepare_home -----------------------------------------------------------------------------


def test_prepare_home_writes_the_template_once(settings: Settings) -> None:
    home = prepare_home(settings)
    assert home == dagster_home(settings) == (Path.cwd() / "state" / "dagster")
    assert home.is_absolute()
    target = home / "dagster.yaml"
    assert target.read_text() == LOCAL_YAML.read_text()
    before = target.stat()

    assert prepare_home(settings) == home
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    target.write_text("telemetry:\n  enabled: true\n")  # a stale or hand-edited copy
    prepare_home(settings)
    assert target.read_text() == LOCAL_YAML.read_text()

    prepare_home(settings, postgres=True)
    assert target.read_text() == POSTGRES_YAML.read_text()
    assert [p.name for p in home.iterdir()] == ["dagster.yaml"]  # no temporary file left


def test_relative_state_dir_gives_an_absolute_home(tmp_path: Path) -> None:
    """Dagster refuses a relative DAGSTER_HOME, and the default state_dir is relative."""
    assert dagster_home(Settings()) == tmp_path / ".ratatouille" / "dagster"


# --- the instances ----------------------------------------------------------------------------


def test_local_yaml_gives_a_working_sqlite_instance(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = prepare_home(settings)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, SqliteRunStorage)
        assert isinstance(instance.event_log_storage, SqliteEventLogStorage)
        assert isinstance(instance.schedule_storage, SqliteScheduleStorage)
        # The yaml's settings are in force, not merely accepted.
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4  # type: ignore[union-attr]
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 60
        sensor_ticks = instance.get_tick_retention_settings(InstigatorType.SENSOR)
        assert sensor_ticks[TickStatus.SKIPPED] == 1
        assert sensor_ticks[TickStatus.SUCCESS] == 7
        schedule_ticks = instance.get_tick_retention_settings(InstigatorType.SCHEDULE)
        assert set(schedule_ticks.values()) == {7}
        assert not instance.get_settings("telemetry")["enabled"]

        run_id = _materialize(instance, tiny)

    assert (home / "history" / "runs.db").is_file()
    # Another process (webserver, daemon) opening the same home sees the run.
    with dg.DagsterInstance.from_config(str(home)) as other:
        run = other.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert other.get_latest_materialization_event(tiny.key) is not None


@pytest.mark.postgres
def test_postgres_yaml_stores_runs_in_postgres(
    settings: Settings, pg_env: dict[str, str], postgres: PostgresServer
) -> None:
    home = prepare_home(settings, postgres=True)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4  # type: ignore[union-attr]

        run_id = _materialize(instance, tiny)
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        event = instance.get_latest_materialization_event(tiny.key)
        assert event is not None and event.run_id == run_id

    conn = postgres.connect(pg_env["DAGSTER_PG_DB"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status, create_timestamp FROM runs WHERE run_id = %s", (run_id,))
            status, created = cur.fetchone()
            cur.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
                (run_id, "ASSET_MATERIALIZATION"),
            )
            (materializations,) = cur.fetchone()
    finally:
        conn.close()
    assert status == "SUCCESS"
    assert materializations == 1
    # The test server runs on Tokyo time; the yaml pins Dagster's sessions to UTC, which is
    # how Dagster reads these naive timestamps back.
    assert abs(created.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=1)


# --- pruning ----------------------------------------------------------------------------------


def test_delete_old_runs_deletes_only_finished_runs_past_the_cutoff(
    instance: dg.DagsterInstance, request: pytest.FixtureRequest
) -> None:
    old_ok = _materialize(instance, tiny)
    old_failed = _materialize(instance, broken)
    straddling = _add_run(instance, dg.DagsterRunStatus.STARTED)  # created before, ends after
    unfinished = [
        _add_run(instance, status)
        for status in (
            dg.DagsterRunStatus.QUEUED,
            dg.DagsterRunStatus.STARTED,
            dg.DagsterRunStatus.CANCELING,
        )
    ]
    time.sleep(0.2)
    boundary = datetime.now(UTC)
    time.sleep(0.2)
    straddling_run = instance.get_run_by_id(straddling)
    assert straddling_run is not None
    instance.report_run_failed(straddling_run)
    new_ok = _materialize(instance, tiny)
    everything = [old_ok, old_failed, straddling, *unfinished, new_ok]

    assert delete_old_runs(instance, timedelta(days=1)) == 0
    assert all(instance.has_run(run_id) for run_id in everything)

    # batch=2 pages past kept runs among deleted ones.
    assert delete_old_runs(instance, datetime.now(UTC) - boundary, batch=2) == 2
    assert [r for r in everything if instance.has_run(r)] == everything[2:]
    for run_id in (old_ok, old_failed):
        _assert_nothing_left(instance, run_id, request)
        assert instance.all_logs(run_id) == []  # and asking is no error
    assert instance.all_logs(new_ok)

    # new_ok stays too: it holds tiny's latest materialization.
    assert delete_old_runs(instance, timedelta(0), batch=2) == 1
    assert [r for r in everything if instance.has_run(r)] == [*unfinished, new_ok]
    latest = instance.get_latest_materialization_event(tiny.key)
    assert latest is not None and latest.run_id == new_ok


def test_delete_old_runs_keeps_what_partitions_are_materialized(
    instance: dg.DagsterInstance,
) -> None:
    """Dagster derives a dynamic-partitioned asset's materialized partitions from the
    materialization events: deleting the latest run of a partition would make it "missing"
    once a new partition (a new dataset) arrives."""
    instance.add_dynamic_partitions(DATASETS, ["a", "b"])
    superseded, latest_a, latest_b = (
        dg.materialize([per_dataset], instance=instance, partition_key=key).run_id
        for key in ("a", "a", "b")
    )

    assert delete_old_runs(instance, timedelta(0)) == 1
    assert not instance.has_run(superseded)
    assert instance.has_run(latest_a) and instance.has_run(latest_b)
    instance.add_dynamic_partitions(DATASETS, ["c"])
    assert instance.get_materialized_partitions(per_dataset.key) == {"a", "b"}


def _assert_nothing_left(
    instance: dg.DagsterInstance, run_id: str, request: pytest.FixtureRequest
) -> None:
    """No row in PostgreSQL, no per-run file on disk."""
    if isinstance(instance.event_log_storage, PostgresEventLogStorage):
        postgres: PostgresServer = request.getfixturevalue("postgres")
        conn = postgres.connect(os.environ["DAGSTER_PG_DB"])
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT (SELECT count(*) FROM runs WHERE run_id = %(id)s)"
                    " + (SELECT count(*) FROM event_logs WHERE run_id = %(id)s)",
                    {"id": run_id},
                )
                assert cur.fetchone() == (0,)
        finally:
            conn.close()
    home = Path(os.environ["DAGSTER_HOME"])
    assert not list(home.rglob(f"*{run_id}*"))


def test_housekeeping_job_applies_the_retention_setting(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATATOUILLE_RUN_RETENTION_DAYS", "30")
    now = datetime.now(UTC)
    old, recent = (
        instance.run_storage.add_historical_run(
            dg.DagsterRun(job_name="elsewhere", status=dg.DagsterRunStatus.SUCCESS),
            now - timedelta(days=days),
        ).run_id
        for days in (31, 29)
    )

    result = housekeeping_job.execute_in_process(instance=instance)

    assert result.success
    assert result.output_for_node("delete_old_runs_op") == 1
    assert not instance.has_run(old)
    assert instance.has_run(recent) and instance.has_run(result.run_id)


def test_housekeeping_schedule_runs_daily_once_deployed() -> None:
    assert housekeeping_schedule.job_name == housekeeping_job.name == "housekeeping"
    assert housekeeping_schedule.cron_schedule == "17 3 * * *"
    assert housekeeping_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    dg.Definitions.validate_loadable(
        dg.Definitions(jobs=[housekeeping_job], schedules=[housekeeping_schedule])
    )
