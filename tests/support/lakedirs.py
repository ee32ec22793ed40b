"""The folders a test lake and its pipelines live in, under one root."""

from collections.abc import Mapping
from pathlib import Path


def lake_dirs(root: Path) -> dict[str, Path]:
    """Settings fields → folders under `root`; the model and notebook-step folders are made."""
    (root / "models").mkdir(exist_ok=True)
    (root / "steps").mkdir(exist_ok=True)
    return {
        "lake_root": root / "lake",
        "state_dir": root / "state",
        "models_dir": root / "models",
        "notebook_steps_dir": root / "steps",
        "datasets_file": root / "datasets.toml",
    }


def env_vars(values: Mapping[str, object]) -> dict[str, str]:
    """Settings fields as the RATATOUILLE_* variables child processes read."""
    return {f"RATATOUILLE_{name.upper()}": str(value) for name, value in values.items()}
