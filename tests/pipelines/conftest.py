"""Fixtures for pipeline tests: a real PostgreSQL server for the session, a database per test."""

import uuid
from collections.abc import Iterator

import pytest

from tests.support.postgres import HOST, PostgresServer


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
