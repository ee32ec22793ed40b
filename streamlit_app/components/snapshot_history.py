"""A table's versions (Delta), newest first, with a two-step rollback: pick one, then confirm."""

import streamlit as st

from lakehouse import Lakehouse, Layer, TableInfo, lineage
from streamlit_app.page_state import CatalogState


def mb(size: int) -> str:
    return f"{size / 2**20:,.2f} MB"


def render_history(lake: Lakehouse, info: TableInfo, page: CatalogState) -> None:
    """List the versions; a Roll back button asks first (`page.confirm`), then restores."""
    if info.layer == Layer.BRONZE.value:
        st.caption(f"Bronze keeps every ingested batch ({info.batches}); it has no versions.")
        return
    for h in lineage.snapshot_history(lake, info.layer, info.name):
        s = h.snapshot
        text, button = st.columns([4, 1], vertical_alignment="center")
        mark = " · **current**" if h.current else ""
        origin = f" · rollback to version {s.restored_from}" if s.restored_from else ""
        run = f" · run `{s.run_id}`" if s.run_id else ""
        text.markdown(
            f"version `{s.snapshot_id}` · {s.created_at} · {s.rows:,} rows · "
            f"{mb(s.size_bytes)}{run}{origin}{mark}"
        )
        if not h.current and button.button(
            "Roll back to this version", key=page.key(f"rollback_{s.snapshot_id}")
        ):
            page.confirm = (info.qualified_name, s.snapshot_id)
    if page.confirm and page.confirm[0] == info.qualified_name:
        _confirm(lake, info, page.confirm[1], page)


def _confirm(lake: Lakehouse, info: TableInfo, snapshot_id: str, page: CatalogState) -> None:
    st.warning(
        f"Make version `{snapshot_id}` of **{info.qualified_name}** current again? "
        "Readers switch to it at once (a new version with its rows); newer versions stay in "
        "the history, so you can roll forward."
    )
    yes, no = st.columns(2)
    if yes.button("Yes, roll back", type="primary", key=page.key("confirm_yes")):
        page.confirm = None
        new = lake.restore(info.layer, info.name, snapshot_id)
        page.flash = (
            f"{info.qualified_name} is back at version `{snapshot_id}` (as version "
            f"`{new.snapshot_id}`)."
        )
        st.rerun()
    if no.button("Cancel", key=page.key("confirm_no")):
        page.confirm = None
        st.rerun()
