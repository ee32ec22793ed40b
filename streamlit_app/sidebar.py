"""The sidebar on every page: where the lake is, whether Dagster answers, and who is in."""

import streamlit as st

from lakehouse.passwords import COOKIE
from streamlit_app.auth import current_user
from streamlit_app.dagster_client import DagsterClient
from streamlit_app.state import get_lakehouse


@st.cache_data(ttl=10, max_entries=4, show_spinner=False)
def dagster_reachable(url: str) -> bool:
    # A short timeout: the sidebar renders on every rerun of every page.
    return DagsterClient(url, timeout_s=1.0).ping()


def render_sidebar() -> None:
    lake = get_lakehouse()
    settings = lake.settings
    where = settings.lake_root if lake.storage.kind == "local" else settings.s3_endpoint
    with st.sidebar:
        st.caption(f"Storage: **{lake.storage.kind}** · `{where}`")
        if dagster_reachable(settings.dagster_url):
            st.caption(f"Pipelines: [Dagster]({settings.dagster_url}) is up")
        else:
            st.caption(
                f"Pipelines: Dagster is **not reachable** at `{settings.dagster_url}` "
                "(uploads and queries still work)"
            )
        user = current_user()
        if user is not None:
            # Plain text: a user name is never Markdown.
            st.text(f"Signed in as {user}")
            if isinstance(st.context.cookies.get(COOKIE), str):
                st.link_button("Log out", "/logout")
