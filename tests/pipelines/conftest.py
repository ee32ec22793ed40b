"""Fixtures for pipeline tests: a real PostgreSQL server for the session, a database per test."""

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakehouse import Settings
from pipelines.serve import DagsterStack, free_port
from tests.support.postgres import HOST, PostgresServer


@contextlib.contextmanager
def running_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: dict[str, str], **settings: Any
) -> Iterator[DagsterStack]:
    """Code server, webserver and daemon on a fresh lake in `tmp_path` with these gold
    models; only these settings in the environment (the stack's processes read it)."""
    for key in list(os.environ):
        if key.startswith(("RATATOUILLE_", "DAGSTER_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    for name, sql in models.items():
        (tmp_path / "models" / f"{name}.sql").write_text(sql)
    (tmp_path / "steps").mkdir()
    port = free_port()
    resolved = Settings(
        lake_root=tmp_path / "lake",
        state_dir=tmp_path / "state",
        models_dir=tmp_path / "models",
        notebook_steps_dir=tmp_path / "steps",
        datasets_file=tmp_path / "datasets.toml",
        dagster_url=f"http://127.0.0.1:{port}",
        **settings,
    )
    for name, value in resolved.model_dump().items():
        if value is not None and not isinstance(value, tuple):
            monkeypatch.setenv(f"RATATOUILLE_{name.upper()}", str(value))
    with DagsterStack(resolved, port=port) as stack:
        yield stack


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_env(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """An empty database no other test sees, exported as the DAGSTER_PG_* variables that
    deploy/dagster/dagster.postgres.yaml reads; dropped afterwards."""
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    env = {
        "DAGSTER_PG_USERNAME": postgres.user,
        "DAGSTER_PG_PASSWORD": postgres.password,
        "DAGSTER_PG_HOST": HOST,
        "DAGSTER_PG_DB": name,
        "DAGSTER_PG_PORT": str(postgres.port),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    postgres.drop_database(name)
