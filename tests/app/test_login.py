"""Login on and off: with a password set, no page renders before it is given."""

import pytest
from streamlit.testing.v1 import AppTest

from lakehouse.passwords import hash_password
from streamlit_app import auth
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
    assert "Wrong password" in at.error[0].value
    assert not at.sidebar.caption
    at.text_input(key="auth_password").set_value("open sesame")
    at.button[0].click().run()
    assert not at.exception
    assert "local" in at.sidebar.caption[0].value, "the app, after login"


def test_delay_grows_after_failures() -> None:
    f = auth._Failures()
    delays = []
    for _ in range(10):
        delays.append(f.delay_s())
        f.count += 1
    assert delays[:3] == [0, 0, 0]
    assert delays[3:6] == [1, 2, 4]
    assert max(delays) <= auth.MAX_DELAY_S
