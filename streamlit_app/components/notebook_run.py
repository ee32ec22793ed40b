"""A notebook step's run, opened on the Pipelines page from its URL
(`pipelines?notebook_run=<run id>&step=<table>`): the executed notebook, outputs included,
as the pipelines rendered it (script-free HTML, see pipelines/notebook_runs.py)."""

from collections.abc import Mapping

import streamlit as st
import streamlit.components.v1 as components

from lakehouse import LakehouseError, Settings
from lakehouse.notebook_runs import rendered_notebook
from streamlit_app.components.failsafe import show_error
from streamlit_app.dagster_client import DagsterClient, DagsterError

RUN_PARAM, STEP_PARAM = "notebook_run", "step"
HEIGHT_PX = 900  # the notebook scrolls inside this frame


def requested(params: Mapping[str, str]) -> tuple[str, str] | None:
    """The (run id, table) the URL asks for; None when it asks for no notebook. The values
    are checked where they become a path (lakehouse.notebook_runs)."""
    if RUN_PARAM not in params and STEP_PARAM not in params:
        return None
    return params.get(RUN_PARAM, ""), params.get(STEP_PARAM, "")


def render_notebook_run(settings: Settings, client: DagsterClient, run_id: str, table: str) -> None:
    st.page_link("app_pages/pipelines.py", label="All pipelines and steps", icon="⬅️")
    try:
        html = rendered_notebook(settings, run_id, table)
    except LakehouseError as e:
        show_error(e)
        return
    st.subheader(f"gold.{table} · run {run_id[:8]}")
    if html is None:
        st.warning(
            f"Run {run_id[:8]} left no notebook for gold.{table}: it was not a notebook step "
            "of that run, it ran before notebooks were kept, or its files were removed since "
            f"(they live under `{settings.state_dir}/notebook_runs/`)."
        )
        return
    try:
        run = client.run(run_id)
    except DagsterError:
        run = None  # the notebook is here; Dagster being away only costs the status line
    if run is not None:
        st.caption(f"Dagster run [{run_id[:8]}]({run.url}): {run.status.lower()}")
        if run.error:
            st.error(run.error)
    components.html(html, height=HEIGHT_PX, scrolling=True)
