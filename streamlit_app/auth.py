"""Who is using the app, and the login when nobody has said yet.

The user comes from the login only: the login gate's signed session cookie (verified here with
the same key), this form's own login, or — only when configured — an SSO proxy's header.
Without a password everyone is "local". Headers a client sends are never a user by themselves.
"""

import secrets

import streamlit as st

from lakehouse.passwords import COOKIE, Throttle, check_login, login_required, read_session
from streamlit_app.state import get_settings

_USER = "auth_user_ok"
_SESSION_ID = "auth_session_id"
LOCAL_USER = "local"


@st.cache_resource
def _throttle() -> Throttle:
    """Failed logins per client address, shared by every session of this process."""
    return Throttle()


def _client_key() -> str:
    """The client's address, or this browser session when Streamlit cannot tell (tests)."""
    address = st.context.ip_address
    if isinstance(address, str) and address:
        return f"ip:{address}"
    if _SESSION_ID not in st.session_state:
        st.session_state[_SESSION_ID] = secrets.token_hex(8)
    return f"session:{st.session_state[_SESSION_ID]}"


def current_user() -> str | None:
    """The logged-in user, "local" without a password, None before login."""
    settings = get_settings()
    if settings.trusted_user_header:
        named = st.context.headers.get(settings.trusted_user_header)
        if isinstance(named, str) and named.strip():
            return named.strip()
    if not login_required(settings):
        return LOCAL_USER
    from_cookie = read_session(settings, st.context.cookies.get(COOKIE))
    if from_cookie is not None:
        return from_cookie
    user = st.session_state.get(_USER)
    return user if isinstance(user, str) else None


def require_login() -> str:
    """The user; before login, the login form and nothing else of the app."""
    user = current_user()
    if user is not None:
        return user
    settings = get_settings()
    st.title("Ratatouille")
    with st.form("auth_form"):
        name = st.text_input("User", value=settings.app_user, key="auth_name")
        password = st.text_input("Password", type="password", key="auth_password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        client = _client_key()
        wait = _throttle().attempt(client)
        if wait > 0:
            # No sleep: only this address waits, and no server thread is held.
            st.error(f"Too many failed logins: try again in {int(wait) + 1} s.")
        elif check_login(settings, name, password):
            _throttle().succeeded(client)
            st.session_state[_USER] = name.strip()
            st.rerun()
        else:
            _throttle().failed(client)
            st.error("Wrong user or password.")
    st.stop()
