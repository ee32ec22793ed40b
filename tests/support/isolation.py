"""A test's own settings: the developer's RATATOUILLE_* variables and .env stay out."""

import os
from pathlib import Path

import pytest


@pytest.fixture
def no_developer_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RATATOUILLE_* from the environment, and a cwd without a .env."""
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
