"""Process-wide objects for the app, built once from Settings."""

import streamlit as st

from lakehouse import Lakehouse, Settings


@st.cache_resource
def get_lakehouse() -> Lakehouse:
    return Lakehouse(Settings())
