"""Who is asking, their query history, and the saved (and pinned) queries."""

import contextlib
from typing import Any

import streamlit as st

from lakehouse import QUERY_NAME_MAX as NAME_MAX
from lakehouse import LakehouseError, QueryStore, SavedQuery, Settings
from lakehouse.passwords import login_required
from streamlit_app import auth
from streamlit_app.components.failsafe import show_error
from streamlit_app.page_state import PlaygroundState

HISTORY_SHOWN = 50
PREVIEW_CHARS = 400


def current_user() -> str:
    """The logged-in user (see streamlit_app/auth.py): scopes the history and owns queries."""
    user = auth.current_user()
    if user is None:  # pages run only after the login; never fall back to a shared name
        st.stop()
    return user


def query_store(settings: Settings) -> QueryStore:
    """The app's history and saved queries: `<state_dir>/app.sqlite` (opening it is cheap:
    each call connects anew, so nothing is cached across sessions). Shared queries (the
    demo's, and those from before queries had owners) are managed by the password's user,
    or by everyone ("local") when the app has no login."""
    admin = settings.app_user if login_required(settings) else auth.LOCAL_USER
    return QueryStore(settings.state_dir / "app.sqlite", admins=(admin,))


def _load(sql: str) -> None:
    st.session_state[PlaygroundState.EDITOR] = sql


def render_history(store: QueryStore, user: str) -> None:
    entries = store.history(user, limit=HISTORY_SHOWN)
    with st.expander(f"History ({len(entries)})"):
        if not entries:
            st.caption("Queries you run appear here.")
        for i, h in enumerate(entries):
            text, load = st.columns([8, 1], vertical_alignment="center")
            outcome = (
                f"✘ {h.error}" if h.error else f"{h.rows or 0:,} rows in {h.elapsed_s or 0:.3f} s"
            )
            text.code(h.sql[:PREVIEW_CHARS], language="sql", wrap_lines=True)
            text.caption(f"{h.ran_at:%Y-%m-%d %H:%M:%S} UTC · {outcome}")
            load.button("Load", key=PlaygroundState.key(f"hist_{i}"), on_click=_load, args=(h.sql,))


def _open(q: SavedQuery) -> None:
    """Fill the editor and the save form, and run it so the saved chart shows."""
    st.session_state[PlaygroundState.EDITOR] = q.sql
    st.session_state[PlaygroundState.key("save_name")] = q.name
    st.session_state[PlaygroundState.key("save_pin")] = q.pinned
    page = PlaygroundState.get()
    page.chart_initial = q.chart
    page.run_pending = True


def _copy(q: SavedQuery) -> None:
    """Open someone else's query under a new name, to be saved as the user's own."""
    _open(q)
    st.session_state[PlaygroundState.key("save_name")] = f"{q.name} (copy)"[:NAME_MAX]
    st.session_state[PlaygroundState.key("save_pin")] = False


def _pin(store: QueryStore, name: str, pinned: bool, user: str) -> None:
    # Deleted meanwhile in another session (or no longer theirs): the list is redrawn.
    with contextlib.suppress(LakehouseError):
        store.set_pinned(name, pinned, user=user)


def _delete(store: QueryStore, name: str, user: str) -> None:
    with contextlib.suppress(LakehouseError):
        store.delete(name, user=user)


def render_saved(
    store: QueryStore,
    user: str,
    sql: str,
    chart: dict[str, Any] | None,
) -> None:
    """Save the editor's SQL (with the chart drawn for it) and list what is saved."""
    key = PlaygroundState.key
    items = store.saved()
    with st.expander(f"Saved queries ({len(items)})", expanded=bool(items)):
        with st.form(key("save_form"), border=False):
            name = st.text_input("Name", max_chars=NAME_MAX, key=key("save_name"))
            pin = st.checkbox("Pin to Home", key=key("save_pin"))
            if st.form_submit_button("Save query", key=key("save")):
                try:
                    store.save(name, sql, chart=chart, pinned=pin, user=user)
                except LakehouseError as e:
                    show_error(e)
                else:
                    st.success(f"Saved {name.strip()!r}" + (" with its chart." if chart else "."))
                    items = store.saved()
        for i, q in enumerate(items):
            text, open_, pin_, del_ = st.columns([6, 1, 1, 1], vertical_alignment="center")
            # Names and owners are user input: plain text, never Markdown (no remote images).
            text.text(("📌 " if q.pinned else "") + q.name + (" · 📊" if q.chart else ""))
            text.text(f"{q.owner or 'shared'} · {q.updated_at:%Y-%m-%d %H:%M} UTC")
            open_.button(
                "Open",
                key=key(f"open_{i}"),
                on_click=_open,
                args=(q,),
            )
            if store.may_change(q, user):
                pin_.button(
                    "Unpin" if q.pinned else "Pin",
                    key=key(f"pin_{i}"),
                    on_click=_pin,
                    args=(store, q.name, not q.pinned, user),
                )
                del_.button(
                    "Delete",
                    key=key(f"del_{i}"),
                    on_click=_delete,
                    args=(store, q.name, user),
                )
            else:
                # Not theirs: they may copy it under a new name, not change it.
                pin_.button(
                    "Copy",
                    key=key(f"copy_{i}"),
                    on_click=_copy,
                    args=(q,),
                )
