"""SQL playground: write a query, run it sandboxed, explore, chart, export, save, make it gold."""

import streamlit as st

from lakehouse import LakehouseError
from streamlit_app.components.gold_model import render_save_model
from streamlit_app.components.query_results import (
    Outcome,
    forget_outputs,
    render_chart,
    render_explain,
    render_export,
    render_result,
    run_query,
    show_error,
)
from streamlit_app.components.saved_queries import (
    current_user,
    query_store,
    render_history,
    render_saved,
)
from streamlit_app.components.schema_browser import render_schema_browser
from streamlit_app.components.sql_editor import render_editor
from streamlit_app.state import get_lakehouse, page_key

P = "sqlpg"
EDITOR = page_key(P, "sql")
OUTCOME = page_key(P, "outcome")
CHART_INITIAL = page_key(P, "chart_initial")  # a saved query's chart, set when it is opened
RUN_PENDING = page_key(P, "run_pending")  # set when a saved query is opened

lake = get_lakehouse()
user = current_user()
st.title("SQL playground")

# -- input ------------------------------------------------------------------------------
try:
    tables = lake.tables()
    store = query_store(lake.settings)
except LakehouseError as e:
    show_error(e)
    st.stop()

with st.sidebar:
    render_schema_browser(tables, EDITOR, P)
if not tables:
    st.info(
        "The lake is empty, so only the examples without tables run. Get data on the "
        "**Upload** page, by dropping a file into the `landing` folder, or with "
        "`ratatouille ingest FILE` (`ratatouille demo` loads sample data)."
    )
run = render_editor(tables, EDITOR)
sql: str = st.session_state[EDITOR]

# -- work -------------------------------------------------------------------------------
if run or st.session_state.pop(RUN_PENDING, False):
    previous: Outcome | None = st.session_state.get(OUTCOME)
    if run and (previous is None or previous.sql.strip() != sql.strip()):
        st.session_state.pop(CHART_INITIAL, None)  # a new query: the saved chart is not its
    forget_outputs(P)
    if not sql.strip():
        st.warning("Write a query first.")
    else:
        with st.spinner("Running…"):
            st.session_state[OUTCOME] = run_query(lake, store, user, sql)

# -- output -----------------------------------------------------------------------------
outcome: Outcome | None = st.session_state.get(OUTCOME)
chart = None
if outcome is not None and outcome.error is not None:
    show_error(outcome.error)
elif outcome is not None and outcome.result is not None:
    render_result(outcome.result, P)
    plan_col, export_col = st.columns(2)
    with plan_col:
        render_explain(lake, outcome.sql, P)
    with export_col:
        render_export(lake, outcome.sql, P)
    chart = render_chart(lake, outcome.sql, outcome.result, P, st.session_state.get(CHART_INITIAL))

# A chart belongs to the query that drew it: saved only while the editor still holds it.
same_query = outcome is not None and outcome.sql.strip() == sql.strip()
render_saved(store, user, sql, chart if same_query else None, EDITOR, P)
render_history(store, user, EDITOR, P)
render_save_model(lake.settings, sql, P)
