"""SQL playground: write a query, run it sandboxed, explore, chart, export, save, make it gold."""

import streamlit as st

from lakehouse import LakehouseError, models
from streamlit_app.components.failsafe import show_error
from streamlit_app.components.gold_model import render_save_model
from streamlit_app.components.query_results import (
    render_chart,
    render_explain,
    render_export,
    render_result,
    run_query,
)
from streamlit_app.components.saved_queries import (
    current_user,
    query_store,
    render_history,
    render_saved,
)
from streamlit_app.components.schema_browser import render_schema_browser
from streamlit_app.components.sql_editor import render_editor
from streamlit_app.page_state import PlaygroundState
from streamlit_app.state import get_lakehouse

page = PlaygroundState.get()
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
    render_schema_browser(tables)
if not tables:
    st.info(
        "The lake is empty, so only the examples without tables run. Get data on the "
        "**Upload** page, by dropping a file into the `landing` folder, or with "
        "`ratatouille ingest FILE` (`ratatouille demo` loads sample data)."
    )
# `?model=<name>` (the Pipelines page's "edit" link) opens that model's SQL, once per model.
model = st.query_params.get("model")
if model and model != page.opened_model:
    page.opened_model = model
    try:
        st.session_state[page.EDITOR] = models.read(lake.settings, model)
        st.session_state.setdefault(PlaygroundState.key("model_name"), model)
        st.caption(f"Opened the model `{model}`: save it below under its name to change it.")
    except LakehouseError as e:
        show_error(e)
run = render_editor(tables, page.EDITOR)
sql: str = st.session_state[page.EDITOR]

# -- work -------------------------------------------------------------------------------
if run or page.run_pending:
    page.run_pending = False
    previous = page.outcome
    if run and (previous is None or previous.sql.strip() != sql.strip()):
        page.chart_initial = None  # a new query: the saved chart is not its
    page.forget_outputs()
    if not sql.strip():
        st.warning("Write a query first.")
    else:
        with st.spinner("Running…"):
            page.outcome = run_query(lake, store, user, sql)

# -- output -----------------------------------------------------------------------------
outcome = page.outcome
chart = None
if outcome is not None and outcome.error is not None:
    show_error(outcome.error)
elif outcome is not None and outcome.result is not None:
    render_result(outcome.result, page)
    plan_col, export_col = st.columns(2)
    with plan_col:
        render_explain(lake, outcome.sql, page)
    with export_col:
        render_export(lake, outcome.sql, page)
    chart = render_chart(lake, outcome.sql, outcome.result, page)

# A chart belongs to the query that drew it: saved only while the editor still holds it.
same_query = outcome is not None and outcome.sql.strip() == sql.strip()
render_saved(store, user, sql, chart if same_query else None)
render_history(store, user)
render_save_model(lake.settings, sql)
