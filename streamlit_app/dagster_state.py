"""The app's one Dagster client, built from Settings (`RATATOUILLE_DAGSTER_URL`)."""

import streamlit as st

from streamlit_app.dagster_client import DagsterClient
from streamlit_app.state import get_settings


@st.cache_resource
def get_dagster() -> DagsterClient:
    """One client per app process; it remembers why failed runs failed."""
    return DagsterClient(get_settings().dagster_url)
