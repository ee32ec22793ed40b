"""Layers → tables → columns, with a button per table that puts a query into the editor."""

import streamlit as st

from lakehouse import TableInfo
from lakehouse.layers import TABLE_LAYERS
from streamlit_app.components.sql_editor import head_query
from streamlit_app.components.text import plain
from streamlit_app.page_state import PlaygroundState


def _insert(sql: str) -> None:
    st.session_state[PlaygroundState.EDITOR] = sql


def render_schema_browser(tables: list[TableInfo]) -> None:
    st.subheader("Tables")
    if not tables:
        st.caption("No tables yet.")
        return
    for layer in TABLE_LAYERS:
        in_layer = [t for t in tables if t.layer == layer.value]
        if not in_layer:
            continue
        st.markdown(f"**{layer.value}**")
        for t in in_layer:
            with st.expander(f"{plain(t.name)} · {t.rows:,} rows"):
                st.markdown("\n".join(f"- {plain(c)} {plain(typ)}" for c, typ in t.columns))
                st.button(
                    "Query this table",
                    key=PlaygroundState.key(f"browse_{t.layer}_{t.name}"),
                    on_click=_insert,
                    args=(head_query(t),),
                    help=f"Put SELECT * FROM {t.qualified_name} LIMIT 100 into the editor.",
                )
