"""Dagster's home folder and its `dagster.yaml`, without importing Dagster (the launcher
uses this; importing dagster makes a process much larger)."""

import os
from pathlib import Path

from lakehouse import Settings

TEMPLATES = Path(__file__).resolve().parents[1] / "deploy" / "dagster"


def dagster_home(settings: Settings) -> Path:
    """The DAGSTER_HOME folder: Dagster insists on an absolute path."""
    return (settings.state_dir / "dagster").resolve()


def prepare_home(settings: Settings, *, postgres: bool = False) -> Path:
    """Create the Dagster home folder with its `dagster.yaml`; return the folder.

    The file is rewritten only when the template changed, and atomically, so a daemon or
    webserver starting at the same moment never reads half a file.
    """
    home = dagster_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    template = TEMPLATES / ("dagster.postgres.yaml" if postgres else "dagster.local.yaml")
    text = template.read_text()
    target = home / "dagster.yaml"
    if not target.exists() or target.read_text() != text:
        partial = home / f".dagster.yaml.{os.getpid()}.tmp"
        partial.write_text(text)
        partial.replace(target)
    return home
