"""Home: what is in the lake, the latest runs, charts pinned from saved queries, and a tour."""

from typing import Any

import streamlit as st

from lakehouse import ChartData, LakehouseError, Layer, SavedQuery, TableInfo, query_inputs
from streamlit_app.components.charts import altair_chart, spec_from_dict
from streamlit_app.components.failsafe import show_error
from streamlit_app.components.saved_queries import query_store
from streamlit_app.components.text import plain
from streamlit_app.components.tour import render_tour
from streamlit_app.dagster_client import DagsterError, DagsterUnavailable
from streamlit_app.dagster_state import get_dagster
from streamlit_app.state import get_lakehouse

LAYERS = [layer.value for layer in (Layer.BRONZE, Layer.SILVER, Layer.GOLD)]
RUNS_SHOWN = 8


@st.cache_data(ttl=3600, max_entries=64, show_spinner="Drawing…")
def _chart(sql: str, chart: dict[str, Any], inputs: tuple[tuple[str, str], ...]) -> ChartData:
    """`inputs` (the snapshot ids the SQL reads) is only part of the key: a new snapshot of one
    of those tables recomputes the chart, anything else is served from the cache."""
    return get_lakehouse().chart(sql, spec_from_dict(chart))


def _lake(tables: list[TableInfo]) -> None:
    for column, layer in zip(st.columns(3), LAYERS, strict=True):
        mine = [t for t in tables if t.layer == layer]
        size = sum(t.size_bytes for t in mine) / 2**20
        count = f"{len(mine)} table" + ("" if len(mine) == 1 else "s")
        column.metric(layer.capitalize(), count, f"{size:,.1f} MB", "off", delta_arrow="off")
    st.dataframe(
        [
            {
                "table": t.qualified_name,
                "rows": t.rows,
                "columns": len(t.columns),
                "MB": round(t.size_bytes / 2**20, 2),
                "updated": t.updated_at,
            }
            for t in tables
        ],
        hide_index=True,
    )
    st.page_link("app_pages/catalog.py", label="Browse the catalog", icon="📚")


@st.fragment(run_every=15)
def _runs() -> None:
    url = get_lakehouse().settings.dagster_url
    try:
        # Why a failed run failed costs a read per run; the Pipelines page shows it.
        runs = get_dagster().runs(limit=RUNS_SHOWN, with_errors=False)
    except DagsterUnavailable:
        st.info(f"Dagster is unreachable at {url}, so no runs to show. `make run` starts it.")
        return
    except DagsterError as e:
        show_error(e)
        return
    if not runs:
        st.caption("No runs yet: they start when data lands in bronze.")
        return
    st.dataframe(
        [
            {
                "status": r.status,
                "what": ", ".join(r.assets) or r.job,
                "partition": r.partition,
                "started": r.started,
                "took (s)": r.duration_s,
                "run": r.url,
            }
            for r in runs
        ],
        column_config={"run": st.column_config.LinkColumn(display_text="open in Dagster")},
        hide_index=True,
    )


def _pinned(saved: list[SavedQuery], tables: list[TableInfo]) -> None:
    for column, q in zip(st.columns(2) * len(saved), saved, strict=False):
        with column.container(border=True):
            st.markdown(f"**{plain(q.name)}**")
            inputs = query_inputs(q.sql, tables)
            if inputs.missing:
                st.caption(
                    f"Waiting for {plain(', '.join(inputs.missing))}: the pipeline builds it."
                )
                continue
            try:
                data = _chart(q.sql, q.chart or {}, tuple(sorted(inputs.snapshots.items())))
            except LakehouseError as e:
                show_error(e)
                continue
            st.altair_chart(altair_chart(data), width="stretch")
            for note in data.notes:
                st.caption(note)


lake = get_lakehouse()
st.title("Ratatouille")
st.caption("Drop a file → bronze → silver and gold → query and chart it.")
try:
    tables = lake.tables()
    pinned = [q for q in query_store(lake.settings).saved(pinned_only=True) if q.chart]
except LakehouseError as e:
    show_error(e)
    st.stop()

if not tables:
    st.info("The lake is empty. Three steps to your first chart:")
    render_tour()
else:
    with st.expander("How it works: three steps"):
        render_tour()

if pinned:
    st.subheader("Dashboard")
    _pinned(pinned, tables)

st.subheader("In the lake")
if tables:
    _lake(tables)
else:
    st.caption("No tables yet.")

st.subheader("Latest runs")
_runs()
