"""The app's entrypoint and home page, driven by Streamlit's AppTest."""

import os
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lakehouse import Lakehouse, Settings

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app" / "streamlit_app.py")


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Lakehouse:
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RATATOUILLE_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("RATATOUILLE_STATE_DIR", str(tmp_path / "state"))
    st.cache_resource.clear()  # each test gets a Lakehouse built from its own settings
    return Lakehouse(Settings())


def test_empty_lake_says_how_to_start(lake: Lakehouse) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "The lake is empty" in at.info[0].value
    assert "local" in at.sidebar.caption[0].value


def test_home_lists_tables(lake: Lakehouse, tmp_path) -> None:
    src = tmp_path / "orders.csv"
    src.write_text("id,amount\n1,9.5\n2,3\n")
    lake.ingest(src)
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    df = at.dataframe[0].value
    assert df["table"].tolist() == ["bronze.orders"]
    assert df["rows"].tolist() == [2]
