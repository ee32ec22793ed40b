"""A lake per test, on each backend: `lake` runs every test on local storage and on S3."""

import os

import pytest

from lakehouse import Lakehouse, Settings


@pytest.fixture(autouse=True)
def _no_developer_config(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The developer's RATATOUILLE_* variables and .env must not leak into tests."""
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def settings(request: pytest.FixtureRequest, tmp_path) -> Settings:
    values: dict[str, object] = {"lake_root": tmp_path / "lake", "state_dir": tmp_path / "state"}
    if request.param == "s3":
        values.update(request.getfixturevalue("s3_env"))
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def lake(settings: Settings) -> Lakehouse:
    return Lakehouse(settings)
