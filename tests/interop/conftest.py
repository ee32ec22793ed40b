"""Other engines on the lake's tables: a local Ray cluster for the module, a lake per test on
each backend (local folder, and S3 marked `s3`)."""

import os
from collections.abc import Iterator

import pytest

from devtools.raycluster import RayCluster, alive
from lakehouse import Lakehouse, Settings
from tests.support.lakedirs import lake_dirs


@pytest.fixture(autouse=True)
def _no_developer_config(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The developer's RATATOUILLE_* variables and .env must not leak into tests."""
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A head and a worker node from .venv-ray; after the module nothing of them may be left."""
    cluster = RayCluster(tmp_path_factory.mktemp("raycluster"))
    cluster.start()
    started = cluster.processes()
    yield cluster
    started |= cluster.processes()
    cluster.stop()
    left = alive(started)
    assert not left, f"Ray processes left after stop: {left}"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def lake(request: pytest.FixtureRequest, tmp_path) -> Iterator[Lakehouse]:
    values: dict[str, object] = dict(lake_dirs(tmp_path))
    if request.param == "s3":
        values.update(request.getfixturevalue("s3_env"))
    with Lakehouse(Settings(**values)) as lake:  # type: ignore[arg-type]
        yield lake
