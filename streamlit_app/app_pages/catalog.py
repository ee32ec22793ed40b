"""Catalog: the tables of each layer; one table's schema, history (with rollback), preview and
lineage."""

import pyarrow as pa
import streamlit as st

from lakehouse import LakehouseError, Layer, TableInfo, lineage
from streamlit_app.components.failsafe import show_error
from streamlit_app.components.text import plain
from streamlit_app.state import get_lakehouse

LAYERS = [layer.value for layer in (Layer.BRONZE, Layer.SILVER, Layer.GOLD)]
PREVIEW_ROWS = 50


@st.cache_data(ttl=600, max_entries=32)
def _preview(layer: str, table: str, snapshot_id: str) -> pa.Table:
    """Keyed by the snapshot id: a new snapshot (or a rollback) reads again."""
    return get_lakehouse().preview(layer, table, PREVIEW_ROWS)


def _select(qualified: str) -> None:
    layer, name = qualified.split(".", 1)
    st.session_state["catalog_layer"] = layer
    st.session_state[f"catalog_table_{layer}"] = name


def _mb(size: int) -> str:
    return f"{size / 2**20:,.2f} MB"


def _history(info: TableInfo) -> None:
    if info.layer == Layer.BRONZE.value:
        st.caption(f"Bronze keeps every ingested batch ({info.batches}); it has no snapshots.")
        return
    entries = lineage.snapshot_history(lake, info.layer, info.name)
    for h in entries:
        s = h.snapshot
        text, button = st.columns([4, 1], vertical_alignment="center")
        mark = " · **current**" if h.current else ""
        text.markdown(
            f"`{s.snapshot_id}` · {s.created_at} · {s.rows:,} rows · {_mb(s.size_bytes)}{mark}"
        )
        if not h.current and button.button(
            "Roll back to this snapshot", key=f"catalog_rollback_{s.snapshot_id}"
        ):
            st.session_state["catalog_confirm"] = (info.qualified_name, s.snapshot_id)
    pending = st.session_state.get("catalog_confirm")
    if pending and pending[0] == info.qualified_name:
        snapshot_id = pending[1]
        st.warning(
            f"Make snapshot `{snapshot_id}` of **{info.qualified_name}** current again? "
            "Readers switch to it at once; newer snapshots stay kept, so you can roll forward."
        )
        yes, no = st.columns(2)
        if yes.button("Yes, roll back", type="primary", key="catalog_confirm_yes"):
            st.session_state.pop("catalog_confirm")
            lake.restore(info.layer, info.name, snapshot_id)
            st.session_state["catalog_flash"] = f"{info.qualified_name} is back at `{snapshot_id}`."
            st.rerun()
        if no.button("Cancel", key="catalog_confirm_no"):
            st.session_state.pop("catalog_confirm")
            st.rerun()


def _links(names: list[str], known: set[str], side: str, empty: str) -> None:
    if not names:
        st.caption(empty)
    for name in names:
        if name in known:
            st.button(
                plain(name), key=f"catalog_goto_{side}_{name}", on_click=_select, args=(name,)
            )
        else:
            st.caption(f"{plain(name)} (no longer in the lake)")


lake = get_lakehouse()
st.title("Catalog")
if flash := st.session_state.pop("catalog_flash", None):
    st.success(flash)

try:
    tables = lake.tables()
except LakehouseError as e:
    show_error(e)
    st.stop()
by_layer = {layer: [t for t in tables if t.layer == layer] for layer in LAYERS}

# Gold first when there is any: it is what most people come to read.
st.session_state.setdefault("catalog_layer", "gold" if by_layer["gold"] else "bronze")
layer = st.radio(
    "Layer",
    LAYERS,
    format_func=lambda lay: f"{lay} ({len(by_layer[lay])})",
    horizontal=True,
    key="catalog_layer",
)
listing = [
    {"table": t.name, "rows": t.rows, "MB": round(t.size_bytes / 2**20, 2), "updated": t.updated_at}
    for t in by_layer[layer]
]
st.dataframe(listing, hide_index=True, key="catalog_tables")
name = st.selectbox("Table", [t.name for t in by_layer[layer]], key=f"catalog_table_{layer}")
if name is None:
    st.info(f"No {layer} tables yet. Upload a file, or run `ratatouille demo`.")
    st.stop()
info = next(t for t in by_layer[layer] if t.name == name)

st.subheader(info.qualified_name)
rows, size, updated = st.columns(3)
rows.metric("Rows", f"{info.rows:,}")
size.metric("Size", _mb(info.size_bytes))
updated.metric("Updated", info.updated_at[:19].replace("T", " "))
if info.run_id:
    st.markdown(
        f"Built by Dagster run [`{info.run_id}`]({lake.settings.dagster_url}/runs/{info.run_id})"
    )
else:
    st.caption("Not built by a Dagster run.")

schema, preview, history, lineage_tab = st.tabs(["Schema", "Preview", "History", "Lineage"])
try:
    with schema:
        st.dataframe(
            [{"column": c, "type": t} for c, t in info.columns],
            hide_index=True,
            key="catalog_schema",
        )
    with preview:
        st.caption(f"The first {PREVIEW_ROWS} rows.")
        st.dataframe(_preview(info.layer, info.name, info.snapshot_id), key="catalog_preview")
    with history:
        _history(info)
    with lineage_tab:
        known = {t.qualified_name for t in tables}
        up_col, down_col = st.columns(2)
        with up_col:
            st.markdown("**Built from**")
            _links(
                lineage.upstream(lake, info.layer, info.name),
                known,
                "up",
                "Files uploaded or dropped in landing."
                if info.layer == Layer.BRONZE.value
                else "Nothing recorded.",
            )
        with down_col:
            st.markdown("**Feeds**")
            _links(lineage.downstream(lake, info.layer, info.name), known, "down", "No tables yet.")
except LakehouseError as e:
    show_error(e)
