"""Session-wide fixtures: a real S3 server (SeaweedFS) and fresh buckets per test."""

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.s3server import REGION, S3Server
from tests.report import pytest_runtest_makereport, pytest_terminal_summary, record

LAYERS = ("bronze", "silver", "gold", "landing")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_buckets(s3_server: S3Server) -> Iterator[dict[str, str]]:
    """Four empty buckets no other test sees, deleted afterwards."""
    prefix = uuid.uuid4().hex[:12]
    buckets = {layer: f"{prefix}-{layer}" for layer in LAYERS}
    s3_server.create_buckets(buckets.values())
    yield buckets
    # Each bucket holds a server volume until deleted; long sessions would run out.
    s3_server.delete_buckets(buckets.values())


@pytest.fixture
def s3_env(
    s3_server: S3Server, s3_buckets: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Settings kwargs for the test server, also exported as RATATOUILLE_* for subprocesses."""
    # AWS_PROFILE, AWS_ENDPOINT_URL etc. would steer boto3/DuckDB away from the test server.
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    env: dict[str, Any] = {
        "storage": "s3",
        "s3_endpoint": s3_server.endpoint,
        "s3_access_key": s3_server.admin_key,
        "s3_secret_key": s3_server.admin_secret,
        "s3_region": REGION,
        "s3_use_ssl": False,
        "s3_url_style": "path",
        **{f"bucket_{layer}": name for layer, name in s3_buckets.items()},
    }
    for field, value in env.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        monkeypatch.setenv(f"RATATOUILLE_{field.upper()}", text)
    return env


# The reliability report's fixture and hooks, for tests/reliability and tests/security alike.
__all__ = ["pytest_runtest_makereport", "pytest_terminal_summary", "record"]
