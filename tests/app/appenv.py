"""A fresh lake per app test: the developer's settings stay out, caches are rebuilt."""

import os
from pathlib import Path

import pytest
import streamlit as st

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app" / "streamlit_app.py")


def fresh_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **settings: object) -> None:
    """Point the app (run in this process by AppTest) at a new lake under `tmp_path`.

    `settings` are extra Settings fields (`dagster_url=...`), exported as RATATOUILLE_*; the
    app's cached Lakehouse and clients are rebuilt from them.
    """
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    values = {"lake_root": tmp_path / "lake", "state_dir": tmp_path / "state", **settings}
    for name, value in values.items():
        monkeypatch.setenv(f"RATATOUILLE_{name.upper()}", str(value))
    st.cache_resource.clear()
    st.cache_data.clear()
