"""Finding 8: the user comes from the login, not from a client header, and saved queries have
an owner: others may open and copy them, not overwrite, pin or delete them."""

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lakehouse.errors import LakehouseError
from lakehouse.passwords import hash_password
from lakehouse.query.saved_queries import QueryStore
from tests.app.appenv import APP, fresh_app

PLAYGROUND = "app_pages/sql_playground.py"


def test_library_refuses_changes_by_another_user(tmp_path: Path, record) -> None:
    store = QueryStore(tmp_path / "app.sqlite", admins=("admin",))
    mine = store.save("Revenue", "SELECT 1", pinned=True, user="ann")
    attempts: dict[str, Callable[[], object]] = {
        "overwrite": lambda: store.save("Revenue", "SELECT 666", user="bob"),
        "delete": lambda: store.delete("Revenue", user="bob"),
        "unpin": lambda: store.set_pinned("Revenue", False, user="bob"),
        "admin overwrite": lambda: store.save("Revenue", "SELECT 666", user="admin"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(LakehouseError) as e:
            attempt()
        assert e.value.title == "Not yours", what
        assert "ann" in e.value.msg and "copy" in e.value.msg
    assert store.get("Revenue") == mine, "unchanged"
    copy = store.save("Revenue (bob)", mine.sql, chart=mine.chart, user="bob")
    assert copy.owner == "bob" and store.get("Revenue") == mine
    store.set_pinned("Revenue", False, user="ann")
    store.delete("Revenue", user="ann")
    assert [q.name for q in store.saved()] == ["Revenue (bob)"]
    record(
        "bob overwrites, deletes and unpins ann's saved query (and the admin overwrites it)",
        "each refused as 'Not yours'; bob saved a copy under his own name; ann still can",
        figures=f"{len(attempts)} refusals",
    )


@pytest.fixture
def two_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    users = tmp_path / "users"
    users.write_text(
        f"ann:{hash_password('ann pw', iterations=1_000)}\n"
        f"bob:{hash_password('bob pw', iterations=1_000)}\n"
    )
    fresh_app(tmp_path, monkeypatch, app_users_file=users, dagster_url="http://127.0.0.1:9")
    return tmp_path / "state" / "app.sqlite"


def _logged_in(user: str) -> AppTest:
    # Straight to the playground: the login form shows first, then the page.
    at = AppTest.from_file(APP, default_timeout=30).switch_page(PLAYGROUND).run()
    at.text_input(key="auth_name").set_value(user)
    at.text_input(key="auth_password").set_value(f"{user} pw")
    at.button[0].click().run()
    assert not at.exception
    assert at.text_area(key="sqlpg_sql"), "the playground, after login"
    return at


def test_app_offers_copy_not_change_of_others_queries(two_users: Path, record) -> None:
    store = QueryStore(two_users)
    store.save("Ann's revenue", "SELECT 42 AS answer", pinned=True, user="ann")

    at = _logged_in("bob")
    keys = {b.key for b in at.button}
    assert "sqlpg_copy_0" in keys
    assert "sqlpg_pin_0" not in keys and "sqlpg_del_0" not in keys
    # Saving over the name is refused with a title and a message.
    at.text_area(key="sqlpg_sql").set_value("SELECT 666")
    at.text_input(key="sqlpg_save_name").set_value("Ann's revenue")
    at.button(key="sqlpg_save").click().run()
    assert not at.exception
    assert any("Not yours" in e.value for e in at.error), [e.value for e in at.error]
    unchanged = store.get("Ann's revenue")
    assert unchanged is not None and unchanged.sql == "SELECT 42 AS answer"
    # Copy: the SQL and a new name; saving makes it bob's.
    at.button(key="sqlpg_copy_0").click().run()
    assert at.text_input(key="sqlpg_save_name").value == "Ann's revenue (copy)"
    at.button(key="sqlpg_save").click().run()
    assert not at.exception
    copy = store.get("Ann's revenue (copy)")
    assert copy is not None and copy.owner == "bob" and copy.sql == "SELECT 42 AS answer"

    at = _logged_in("ann")
    keys = {b.key for b in at.button}
    assert {"sqlpg_pin_0", "sqlpg_del_0"} <= keys, "ann manages her own"
    at.button(key="sqlpg_del_0").click().run()
    assert store.get("Ann's revenue") is None
    record(
        "in the app, bob (logged in) tries to save over ann's query; the list offers him Copy",
        "refused as 'Not yours'; no Pin/Delete for bob; his copy is his; ann deletes hers",
    )


def test_history_belongs_to_the_logged_in_user(two_users: Path, record) -> None:
    at = _logged_in("bob")
    assert "Signed in as bob" in [t.value for t in at.sidebar.text]
    at.text_area(key="sqlpg_sql").set_value("SELECT 1 AS one")
    at.button(key="sqlpg_sql_run").click().run()
    assert not at.exception
    store = QueryStore(two_users)
    assert [h.sql for h in store.history("bob")] == ["SELECT 1 AS one"]
    assert store.history("local") == [] and store.history("ann") == []
    record(
        "a logged-in user runs a query",
        "the history is filed under the login's user, not a header or 'local'",
    )
