"""Pipelines: are runs succeeding, are tables fresh, do checks pass; every gold step and its
last run (a notebook step's executed notebook opens here); build an asset or re-run."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import streamlit as st

from streamlit_app.components import health
from streamlit_app.components.failsafe import show_error
from streamlit_app.components.notebook_run import render_notebook_run, requested
from streamlit_app.components.steps import render_steps
from streamlit_app.dagster_client import DagsterClient, DagsterError, DagsterUnavailable
from streamlit_app.dagster_state import get_dagster
from streamlit_app.page_state import PipelinesState
from streamlit_app.state import get_settings

REFRESH_S = 10
HOW_TO_START = (
    "Start it with `make run` (or `.venv/bin/python -m pipelines.serve`), or set "
    "`RATATOUILLE_DAGSTER_URL` to the address of a running Dagster webserver."
)

st.title("Pipelines")
page = PipelinesState.get()
key = PipelinesState.key
client = get_dagster()
settings = get_settings()
stale_after_h = settings.stale_after_h


def show_dagster_error(e: DagsterError) -> None:
    show_error(e, HOW_TO_START if isinstance(e, DagsterUnavailable) else "")


def tiles(stats: health.RunStats, window: str) -> None:
    st.markdown(f"**Runs in the {window}** · {stats.runs} in all, {stats.in_flight} in flight")
    cols = st.columns(4)
    cols[0].metric("Succeeded", stats.succeeded)
    cols[1].metric("Failed", stats.failed)
    cols[2].metric("Failure rate", health.format_rate(stats.failure_rate))
    cols[3].metric("Median duration", health.format_duration(stats.median_duration_s))


def table(rows: list[dict[str, Any]], key: str, **columns: Any) -> None:
    if not rows:
        st.caption("Nothing yet.")
        return
    st.dataframe(rows, hide_index=True, column_config=columns, key=key)


def actions(client: DagsterClient, h: health.Health) -> None:
    """Build one asset (one partition of a partitioned one), or re-run a failed run."""
    left, right = st.columns(2)
    with left:
        st.markdown("**Materialize an asset**")
        by_name = {a.name: a for a in h.assets if a.materializable}
        name = st.selectbox("Asset", sorted(by_name), key=key("asset"))
        partition = None
        if name and by_name[name].partitions is not None:
            partition = st.selectbox("Partition", by_name[name].partition_keys, key=key("part"))
        if st.button("Materialize", key=key("materialize"), disabled=not name):
            launch(lambda: client.materialize(by_name[name].key, partition))
    with right:
        st.markdown("**Re-run a failed run**")
        failed = {r.run_id: r for r in h.runs if r.status == "FAILURE"}
        run_id = st.selectbox(
            "Failed run",
            list(failed),
            format_func=lambda i: f"{i[:8]} · {', '.join(failed[i].assets) or failed[i].job}",
            key=key("failed_run"),
        )
        all_steps = st.checkbox("All steps, not only the failed ones", key=key("all_steps"))
        if st.button("Re-run", key=key("rerun"), disabled=not run_id):
            launch(lambda: client.reexecute(str(run_id), from_failure=not all_steps))
    if launched := page.launched:
        status = next((r.status.lower() for r in h.runs if r.run_id == launched), "queued")
        st.success(f"Launched run [{launched[:8]}]({client.run_url(launched)}): {status}.")


def launch(start: Callable[[], str]) -> None:
    try:
        page.launched = start()
    except DagsterError as e:
        show_dagster_error(e)


@st.fragment(run_every=REFRESH_S)
def dashboard() -> None:
    try:
        h = health.load_health(client)
    except DagsterError as e:
        show_dagster_error(e)
        return
    when = datetime.now().astimezone().strftime("%H:%M:%S")
    st.caption(f"[Dagster UI]({client.url}) · refreshed {when}, every {REFRESH_S} s")

    tiles(h.day, "last 24 h")
    tiles(h.week, "last 7 days")
    if h.week_truncated:
        st.caption(f"The 7-day tiles count the newest {health.WINDOW_RUNS} runs only.")

    st.subheader("Steps")
    st.caption("Every gold step: SQL models, notebooks and Python assets.")
    try:
        render_steps(client, settings)
    except DagsterError as e:
        show_dagster_error(e)

    st.subheader("Runs")
    table(
        health.run_rows(h.runs),
        key("runs"),
        run=st.column_config.LinkColumn("run", display_text=r"/runs/(.{8})"),
        created=st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm:ss"),
    )

    st.subheader("Freshness")
    st.caption(f"Stale: never built, or not rebuilt for {stale_after_h:g} h.")
    table(
        health.freshness_rows(health.freshness(h.assets, h.now, stale_after_h)),
        key("freshness"),
        asset=st.column_config.LinkColumn("asset", display_text=r"/assets/(.*)$"),
    )

    st.subheader("Checks")
    table(health.check_rows(health.check_results(h.assets)), key("checks"))

    sensors, daemons = st.columns(2)
    with sensors:
        st.subheader("Sensors")
        table(health.sensor_rows(h.sensors, h.now), key("sensors"))
    with daemons:
        st.subheader("Daemons")
        table(health.daemon_rows(h.daemons, h.now), key("daemons"))

    st.subheader("Start a run")
    actions(client, h)


if (notebook := requested(st.query_params.to_dict())) is not None:
    render_notebook_run(settings, client, *notebook)
else:
    dashboard()
