"""Login on and off: with a password set, no page renders before it is given."""

import time

import pytest
from streamlit.testing.v1 import AppTest

from lakehouse import passwords
from lakehouse.passwords import hash_password
from tests.app.appenv import APP, fresh_app


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch) -> None:
    fresh_app(tmp_path, monkeypatch)


def test_no_password_no_login() -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert not at.text_input, "no password box"
    assert at.title[0].value == "Ratatouille"


@pytest.mark.parametrize("kind", ["plain", "hash"])
def test_password_gate(monkeypatch, kind: str) -> None:
    if kind == "plain":
        monkeypatch.setenv("RATATOUILLE_APP_PASSWORD", "open sesame")
    else:
        monkeypatch.setenv(
            "RATATOUILLE_APP_PASSWORD_HASH", hash_password("open sesame", iterations=1_000)
        )
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert at.text_input(key="auth_password")
    assert not at.sidebar.caption, "nothing of the app before login"
    at.text_input(key="auth_password").set_value("wrong")
    at.button[0].click().run()
    assert "Wrong user or password" in at.error[0].value
    assert not at.sidebar.caption
    at.text_input(key="auth_password").set_value("open sesame")
    at.button[0].click().run()
    assert not at.exception
    assert "local" in at.sidebar.caption[0].value, "the app, after login"


def test_failures_delay_only_that_client(monkeypatch) -> None:
    """Failed logins slow down the client that made them (HTTP-less here: per session, as
    AppTest has no address), never everyone: another client logs in at once."""
    monkeypatch.setenv("RATATOUILLE_APP_PASSWORD", "open sesame")
    guesser = AppTest.from_file(APP, default_timeout=30).run()
    for _ in range(passwords.FREE_TRIES + 1):
        guesser.text_input(key="auth_password").set_value("wrong")
        guesser.button[0].click().run()
    guesser.text_input(key="auth_password").set_value("wrong")
    guesser.button[0].click().run()
    assert "Too many failed logins" in guesser.error[0].value
    guesser.text_input(key="auth_password").set_value("open sesame")
    guesser.button[0].click().run()
    assert not guesser.sidebar.caption, "even the right password waits for the delay"

    other = AppTest.from_file(APP, default_timeout=30).run()
    started = time.monotonic()
    other.text_input(key="auth_password").set_value("open sesame")
    other.button[0].click().run()
    assert other.sidebar.caption, "another client is not locked out"
    assert time.monotonic() - started < 5


def test_users_file_names_the_user(tmp_path, monkeypatch) -> None:
    users = tmp_path / "users"
    users.write_text(f"ann:{hash_password('ann pw', iterations=1_000)}\n")
    monkeypatch.setenv("RATATOUILLE_APP_USERS_FILE", str(users))
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input(key="auth_name").set_value("ann")
    at.text_input(key="auth_password").set_value("admin pw")
    at.button[0].click().run()
    assert "Wrong user or password" in at.error[0].value
    at.text_input(key="auth_password").set_value("ann pw")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["auth_user_ok"] == "ann"
