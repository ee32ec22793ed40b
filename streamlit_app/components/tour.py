"""The three-step tour of the loop, shown on Home (open when the lake is empty)."""

import streamlit as st


def render_tour() -> None:
    """Upload, watch the pipeline, query: each step with a link to its page."""
    steps = st.columns(3)
    with steps[0]:
        st.markdown(
            "**1. Bring data.** Upload a CSV, Excel, JSON or Parquet file, or run "
            "`ratatouille demo` for a small retail business to explore."
        )
        st.page_link("app_pages/upload.py", label="Upload a file", icon="📤")
    with steps[1]:
        st.markdown(
            "**2. Watch the pipeline.** Every file lands in bronze; Dagster cleans it into "
            "silver and builds the gold tables from it, on its own."
        )
        st.page_link("app_pages/pipelines.py", label="Pipelines", icon="🚦")
    with steps[2]:
        st.markdown(
            "**3. Query and chart it.** Ask the lake in SQL, chart the answer, and pin the "
            "chart here."
        )
        st.page_link("app_pages/sql_playground.py", label="SQL playground", icon="🧪")
