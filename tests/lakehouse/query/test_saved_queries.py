"""Query history and saved queries in SQLite: persistence, per-user history, cap, threads."""

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse.errors import LakehouseError, StorageError
from lakehouse.query.saved_queries import HISTORY_KEEP, NAME_MAX, QueryStore


@pytest.fixture
def store(tmp_path: Path) -> QueryStore:
    return QueryStore(tmp_path / "state" / "app.sqlite")


def test_save_roundtrip(store: QueryStore) -> None:
    chart = {"mark": "bar", "x": "day", "y": "amount", "aggregate": "sum"}
    saved = store.save("Revenue per day", " SELECT 1 \n", chart=chart, pinned=True, user="ann")
    assert saved.name == "Revenue per day"
    assert saved.sql == "SELECT 1"
    assert saved.chart == chart
    assert saved.pinned
    assert saved.user == "ann"
    assert saved.created_at == saved.updated_at
    assert saved.created_at.tzinfo is not None
    assert store.get("Revenue per day") == saved
    assert store.saved() == [saved]
    assert store.get("nope") is None


def test_saving_an_existing_name_updates_it(store: QueryStore) -> None:
    first = store.save("q", "SELECT 1", chart={"mark": "bar"}, user="ann")
    second = store.save("q", "SELECT 2", user="ann")
    assert [s.name for s in store.saved()] == ["q"]
    assert second.sql == "SELECT 2"
    assert second.chart is None
    assert second.user == second.owner == "ann"
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at


def test_pin_unpin_and_delete(store: QueryStore) -> None:
    store.save("b", "SELECT 2", user="ann")
    store.save("A", "SELECT 1", user="ann")
    store.save("c", "SELECT 3", user="ann", pinned=True)
    assert [s.name for s in store.saved()] == ["A", "b", "c"]  # by name, any case
    store.set_pinned("A", True, user="ann")
    store.set_pinned("c", False, user="ann")
    assert [s.name for s in store.saved(pinned_only=True)] == ["A"]
    store.delete("A", user="ann")
    store.delete("A", user="ann")  # already gone: nothing to do
    assert [s.name for s in store.saved()] == ["b", "c"]
    assert store.saved(pinned_only=True) == []
    with pytest.raises(LakehouseError, match="no saved query"):
        store.set_pinned("A", True, user="ann")


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * (NAME_MAX + 1), "two\nlines", "tab\there"],
)
def test_invalid_names_are_refused(store: QueryStore, name: str) -> None:
    """Empty, too long, or with characters that would break a one-line list."""
    with pytest.raises(LakehouseError) as e:
        store.save(name, "SELECT 1", user="ann")
    assert e.value.title == "Invalid query name"
    assert store.saved() == []


def test_names_at_the_limit_and_unicode_are_fine(store: QueryStore) -> None:
    store.save("x" * NAME_MAX, "SELECT 1", user="ann")
    store.save("  Umsatz pro Tag — 🐀 ", "SELECT 1", user="ann")
    assert store.get("Umsatz pro Tag — 🐀") is not None
    assert len(store.saved()) == 2


def test_empty_sql_and_unstorable_charts_are_refused(store: QueryStore) -> None:
    with pytest.raises(LakehouseError, match="no SQL"):
        store.save("q", "  ", user="ann")
    with pytest.raises(LakehouseError, match="chart"):
        store.save("q", "SELECT 1", chart={"when": datetime.now(UTC)}, user="ann")
    assert store.saved() == []


def test_everything_survives_a_new_instance(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    one = QueryStore(path)
    one.record("ann", "SELECT 1", elapsed_s=0.5, rows=1, error=None)
    one.save("q", "SELECT 1", chart={"mark": "line"}, pinned=True, user="ann")
    two = QueryStore(path)
    assert [h.sql for h in two.history("ann")] == ["SELECT 1"]
    assert two.saved(pinned_only=True)[0].chart == {"mark": "line"}
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_history_is_per_user_and_newest_first(store: QueryStore) -> None:
    store.record("ann", "SELECT 1", elapsed_s=0.1, rows=1, error=None)
    store.record("bob", "SELECT 'bob'", elapsed_s=0.2, rows=1, error=None)
    store.record("ann", "SELECT nope", elapsed_s=None, rows=None, error="Binder Error: nope")
    ann = store.history("ann")
    assert [h.sql for h in ann] == ["SELECT nope", "SELECT 1"]
    assert ann[0].error == "Binder Error: nope"
    assert ann[0].rows is None and ann[0].elapsed_s is None
    assert ann[1].rows == 1 and ann[1].elapsed_s == 0.1 and ann[1].error is None
    assert ann[0].ran_at >= ann[1].ran_at
    assert [h.sql for h in store.history("bob")] == ["SELECT 'bob'"]
    assert store.history("carl") == []
    assert len(store.history("ann", limit=1)) == 1


def test_history_keeps_one_entry_for_a_rerun(store: QueryStore) -> None:
    store.record("ann", "SELECT 1", elapsed_s=0.1, rows=1, error=None)
    store.record("ann", "SELECT 2", elapsed_s=0.1, rows=1, error=None)
    store.record("ann", "SELECT 2\n", elapsed_s=0.3, rows=None, error="boom")
    store.record("ann", "SELECT 1", elapsed_s=0.1, rows=1, error=None)
    store.record("ann", "  ", elapsed_s=0.1, rows=0, error=None)  # nothing to remember
    entries = store.history("ann")
    assert [h.sql for h in entries] == ["SELECT 1", "SELECT 2", "SELECT 1"]
    assert entries[1].error == "boom"  # the latest outcome of the repeated run
    assert entries[1].elapsed_s == 0.3


def test_history_is_capped_per_user(store: QueryStore) -> None:
    store.record("bob", "SELECT 'bob'", elapsed_s=None, rows=None, error=None)
    for i in range(HISTORY_KEEP + 20):
        store.record("ann", f"SELECT {i}", elapsed_s=None, rows=None, error=None)
    entries = store.history("ann", limit=10_000)
    assert len(entries) == HISTORY_KEEP
    assert entries[0].sql == f"SELECT {HISTORY_KEEP + 19}"
    assert entries[-1].sql == "SELECT 20"
    assert len(store.history("bob")) == 1  # another user's cap is theirs


def test_concurrent_writes_from_threads(tmp_path: Path) -> None:
    """Streamlit runs each session in a thread; none of their writes may be lost or fail."""
    path = tmp_path / "app.sqlite"
    QueryStore(path)
    errors: list[Exception] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        store = QueryStore(path)  # like a page run: a fresh object on the same file
        try:
            start.wait()
            for i in range(40):
                store.record(f"user{n % 2}", f"SELECT {n}, {i}", elapsed_s=0.0, rows=1, error=None)
                store.save(f"q{n}", f"SELECT {i}", user=f"user{n}", pinned=i % 2 == 0)
                store.history(f"user{n % 2}", limit=5)
        except Exception as e:  # noqa: BLE001 - any failure in a thread must fail the test
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = QueryStore(path)
    assert len(store.history("user0", limit=1000)) == 4 * 40
    assert len(store.history("user1", limit=1000)) == 4 * 40
    assert [s.sql for s in store.saved()] == ["SELECT 39"] * 8


def test_an_unusable_file_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError) as e:
        QueryStore(path)
    assert e.value.title == "The app's query store is unavailable"


def test_files_from_before_owners_are_migrated(tmp_path: Path) -> None:
    """Queries saved before owners existed become shared: the admins manage them."""
    path = tmp_path / "app.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE saved_queries (name TEXT PRIMARY KEY, sql TEXT NOT NULL, chart TEXT, "
        "pinned INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
        "user TEXT NOT NULL);"
        "INSERT INTO saved_queries VALUES ('old', 'SELECT 1', NULL, 1, "
        "'2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 'someone');"
    )
    con.commit()
    con.close()
    store = QueryStore(path, admins=("admin",))
    old = store.get("old")
    assert old is not None and old.owner is None and old.user == "someone"
    with pytest.raises(LakehouseError) as e:
        store.set_pinned("old", False, user="someone")
    assert e.value.title == "Not yours"
    store.set_pinned("old", False, user="admin")
    store.save("old", "SELECT 2", user="admin")
    edited = store.get("old")
    assert edited is not None and edited.owner is None, "an admin's edit keeps it shared"
    store.delete("old", user="admin")
    assert store.saved() == []
