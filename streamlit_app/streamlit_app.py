"""Ratatouille's app: login gate, navigation and sidebar; each page lives in app_pages/."""

import sys
from pathlib import Path

import streamlit as st

# `streamlit run streamlit_app/streamlit_app.py` puts this folder, not the repo, on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamlit_app.auth import require_login
from streamlit_app.components.failsafe import failsafe
from streamlit_app.sidebar import render_sidebar

st.set_page_config(page_title="Ratatouille", page_icon="🐀", layout="wide")
require_login()

pages = [
    st.Page("app_pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("app_pages/upload.py", title="Upload", icon="📤"),
    st.Page("app_pages/sql_playground.py", title="SQL playground", icon="🧪"),
    st.Page("app_pages/pipelines.py", title="Pipelines", icon="🚦"),
    st.Page("app_pages/catalog.py", title="Catalog", icon="📚"),
]
nav = st.navigation(pages)
render_sidebar()
with failsafe():  # a page's unexpected error shows a title and a reference, no traceback
    nav.run()
