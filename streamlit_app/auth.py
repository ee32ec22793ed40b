"""The login gate: when the app has a password, no page renders before it is given."""

import threading
import time
from dataclasses import dataclass, field

import streamlit as st

from lakehouse.passwords import check_password, login_required
from streamlit_app.state import get_settings

_KEY = "auth_ok"
# Failures before the delay starts, and its ceiling in seconds.
FREE_TRIES = 3
MAX_DELAY_S = 30.0


@dataclass
class _Failures:
    """Process-wide, so a new browser session does not reset the delay."""

    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delay_s(self) -> float:
        extra = self.count - FREE_TRIES
        return 0.0 if extra < 0 else min(MAX_DELAY_S, 2.0**extra)


@st.cache_resource
def _failures() -> _Failures:
    return _Failures()


def require_login() -> None:
    settings = get_settings()
    if not login_required(settings) or st.session_state.get(_KEY):
        return
    st.title("Ratatouille")
    with st.form("auth_form"):
        password = st.text_input("Password", type="password", key="auth_password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        failures = _failures()
        time.sleep(failures.delay_s())  # slows guessing; the wait is before the check
        if check_password(settings, password):
            with failures.lock:
                failures.count = 0
            st.session_state[_KEY] = True
            st.rerun()
        with failures.lock:
            failures.count += 1
        st.error("Wrong password.")
    st.stop()
