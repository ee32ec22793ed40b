"""What each page remembers between reruns: one typed object per page, and its widget keys.

A page's object lives in `st.session_state` under one key (`<prefix>_state`, e.g. `sqlpg_state`);
widgets keep their own values under `<prefix>_<name>` keys made by `key()` (Streamlit binds a
widget to a session key, so those stay separate). Components that hand something to their page
(an opened saved query, a pending rollback) set an attribute here, never a raw key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

import streamlit as st

from streamlit_app.state import page_key

if TYPE_CHECKING:  # the components import this module; their types are only annotations here
    from lakehouse import LakehouseError
    from streamlit_app.components.query_results import Download, QueryOutcome
    from streamlit_app.components.resumable_upload import CompletedUpload
    from streamlit_app.components.upload_results import UploadOutcome


class PageState:
    """Base of the per-page objects: `get()` the session's one, `key()` a widget key."""

    PREFIX: ClassVar[str]

    @classmethod
    def get(cls) -> Self:
        key = page_key(cls.PREFIX, "state")
        found = st.session_state.get(key)
        if not isinstance(found, cls):
            found = cls()
            st.session_state[key] = found
        return found

    @classmethod
    def key(cls, name: str) -> str:
        return page_key(cls.PREFIX, name)


@dataclass
class PlaygroundState(PageState):
    PREFIX: ClassVar[str] = "sqlpg"
    EDITOR: ClassVar[str] = page_key(PREFIX, "sql")  # the editor's text, kept for the whole session

    outcome: QueryOutcome | None = None  # the last run; export, explain and chart read it
    chart_initial: dict[str, Any] | None = None  # the opened saved query's chart
    run_pending: bool = False  # a saved query was opened: the page runs it once
    plan: str | LakehouseError | None = None  # Explain's answer for the last run
    download: Download | None = None  # the last run's prepared export
    opened_model: str | None = None  # the model the URL (`?model=`) last put in the editor

    def forget_outputs(self) -> None:
        """The plan and the prepared download belong to the previous run."""
        self.plan = None
        self.download = None


@dataclass
class UploadState(PageState):
    PREFIX: ClassVar[str] = "upload"

    # Every upload finished in this session, by tus upload id, oldest first: the uploader only
    # knows those of its own page view, so a visit to another page loses none.
    uploads: dict[str, CompletedUpload] = field(default_factory=dict)
    outcomes: dict[str, UploadOutcome] = field(default_factory=dict)  # the final ones, by id

    def add(self, done: list[CompletedUpload]) -> None:
        for upload in done:
            self.uploads.setdefault(upload.id, upload)


@dataclass
class CatalogState(PageState):
    PREFIX: ClassVar[str] = "catalog"

    confirm: tuple[str, str] | None = None  # (qualified table, snapshot id) awaiting a yes
    flash: str | None = None  # shown once after a rollback, on the rerun it causes


@dataclass
class PipelinesState(PageState):
    PREFIX: ClassVar[str] = "pipe"

    launched: str | None = None  # the run id the last Materialize or Re-run started
