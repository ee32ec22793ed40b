"""The sidebar on every page: where the lake is and whether Dagster answers."""

import streamlit as st

from streamlit_app.state import get_lakehouse


def render_sidebar() -> None:
    lake = get_lakehouse()
    where = lake.settings.lake_root if lake.storage.kind == "local" else lake.settings.s3_endpoint
    with st.sidebar:
        st.caption(f"Storage: **{lake.storage.kind}** · `{where}`")
