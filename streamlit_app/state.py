"""Process-wide objects for the app, built once from Settings, and page-scoped session keys."""

import streamlit as st

from lakehouse import Lakehouse, Settings


@st.cache_resource
def get_lakehouse() -> Lakehouse:
    """One Lakehouse (and its query worker pool) per app process."""
    return Lakehouse(Settings())


def get_settings() -> Settings:
    return get_lakehouse().settings


def page_key(page: str, name: str) -> str:
    """Session-state keys are prefixed by their page (`upload_`, `sqlpg_`, `pipe_`, ...)."""
    return f"{page}_{name}"
