"""Ratatouille's app: navigation and sidebar; each page lives in app_pages/."""

import sys
from pathlib import Path

import streamlit as st

# `streamlit run streamlit_app/streamlit_app.py` puts this folder, not the repo, on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamlit_app.state import get_lakehouse

st.set_page_config(page_title="Ratatouille", page_icon="🐀", layout="wide")

pages = [st.Page("app_pages/home.py", title="Home", icon="🏠", default=True)]
nav = st.navigation(pages)
with st.sidebar:
    lake = get_lakehouse()
    where = lake.settings.lake_root if lake.storage.kind == "local" else lake.settings.s3_endpoint
    st.caption(f"Storage: **{lake.storage.kind}** · `{where}`")
nav.run()
