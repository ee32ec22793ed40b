"""Query history per user and named saved queries, in one SQLite file that survives restarts.

The app runs each browser session in its own thread, so every call opens its own connection
(a connect is ~0.1 ms) and the file is in WAL mode: readers never wait for a writer, and
writers queue on SQLite's busy timeout instead of failing with "database is locked".

Saved queries have an owner: only they change, pin or delete them; anyone may open one and save
a copy under a new name. Queries without an owner (saved before owners existed, or the demo's)
are shared: the store's admins (the app's password user, or "local" without a login) manage them.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakehouse.errors import LakehouseError, StorageError

HISTORY_KEEP = 500  # runs kept per user; older ones are dropped on the next record
NAME_MAX = 80
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    sql TEXT NOT NULL,
    ran_at TEXT NOT NULL,
    elapsed_s REAL,
    rows INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS history_user ON history (user, id);
CREATE TABLE IF NOT EXISTS saved_queries (
    name TEXT PRIMARY KEY,
    sql TEXT NOT NULL,
    chart TEXT,
    pinned INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    user TEXT NOT NULL,
    owner TEXT
);
"""
# Files from before owners: their queries become shared (owner NULL), managed by the admins.
_MIGRATIONS = {"owner": "ALTER TABLE saved_queries ADD COLUMN owner TEXT"}


@dataclass(frozen=True)
class QueryRun:
    sql: str
    ran_at: datetime  # UTC
    elapsed_s: float | None
    rows: int | None
    error: str | None  # None when the query ran


@dataclass(frozen=True)
class SavedQuery:
    name: str
    sql: str
    chart: dict[str, Any] | None  # the chart builder's spec, drawn with the query
    pinned: bool  # pinned queries show on Home
    created_at: datetime  # UTC
    updated_at: datetime
    user: str  # who saved it last
    owner: str | None = None  # who may change it; None: shared, managed by the admins


class QueryStore:
    """History and saved queries in the SQLite file at `path` (created on first use).

    `admins` may change shared queries (those without an owner)."""

    def __init__(self, path: Path, *, admins: Collection[str] = ("local",)) -> None:
        self.path = Path(path)
        self.admins = frozenset(admins)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(str(e), title="Cannot create the app's state folder") from e
        try:
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                con.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
                con.executescript(_SCHEMA)
                columns = {r[1] for r in con.execute("PRAGMA table_info(saved_queries)")}
                for column, ddl in _MIGRATIONS.items():
                    if column not in columns:
                        con.execute(ddl)
            finally:
                con.close()
        except sqlite3.Error as e:
            raise _storage_error(self.path, e) from e

    @contextlib.contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One connection per call, its statements in one transaction. Writes take the write
        lock up front (BEGIN IMMEDIATE), so a read-then-write cannot interleave with another."""
        try:
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as e:
            raise _storage_error(self.path, e) from e
        try:
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield con
            con.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise _storage_error(self.path, e) from e
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    # -- history --------------------------------------------------------------------------
    def record(
        self,
        user: str,
        sql: str,
        *,
        elapsed_s: float | None,
        rows: int | None,
        error: str | None,
    ) -> None:
        """Add a run to the user's history; re-running the newest SQL updates that entry."""
        sql = sql.strip()
        if not sql:
            return
        values = (_now(), elapsed_s, rows, error)
        with self._connect(write=True) as con:
            last = con.execute(
                "SELECT id, sql FROM history WHERE user = ? ORDER BY id DESC LIMIT 1", (user,)
            ).fetchone()
            if last is not None and last[1] == sql:
                con.execute(
                    "UPDATE history SET ran_at = ?, elapsed_s = ?, rows = ?, error = ? "
                    "WHERE id = ?",
                    (*values, last[0]),
                )
                return
            con.execute(
                "INSERT INTO history (user, sql, ran_at, elapsed_s, rows, error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (user, sql, *values),
            )
            con.execute(
                "DELETE FROM history WHERE user = ? AND id <= ("
                "  SELECT id FROM history WHERE user = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (user, user, HISTORY_KEEP),
            )

    def history(self, user: str, limit: int = 50) -> list[QueryRun]:
        """The user's runs, newest first (a SQL run several times in a row appears once)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT sql, ran_at, elapsed_s, rows, error FROM history "
                "WHERE user = ? ORDER BY id DESC LIMIT ?",
                (user, max(0, limit)),
            ).fetchall()
        return [QueryRun(r[0], _time(r[1]), r[2], r[3], r[4]) for r in rows]

    # -- saved queries --------------------------------------------------------------------
    def save(
        self,
        name: str,
        sql: str,
        *,
        chart: dict[str, Any] | None = None,
        pinned: bool = False,
        user: str,
        shared: bool = False,
    ) -> SavedQuery:
        """Save the SQL (and chart spec) under a name, owned by `user` (no owner: `shared`).
        An existing name is updated if `user` may change it, else LakehouseError "Not yours"."""
        name = check_query_name(name)
        sql = sql.strip()
        if not sql:
            raise LakehouseError("There is no SQL to save.", title="Nothing to save")
        try:
            chart_json = None if chart is None else json.dumps(chart, sort_keys=True)
        except (TypeError, ValueError) as e:
            raise LakehouseError(
                f"The chart settings cannot be stored ({e}).", title="Cannot save this chart"
            ) from e
        now = _now()
        with self._connect(write=True) as con:
            self._check_owner(con, name, user)
            # An update keeps the owner: saving over a shared query does not take it over.
            con.execute(
                "INSERT INTO saved_queries (name, sql, chart, pinned, created_at, updated_at, "
                "user, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "sql = excluded.sql, chart = excluded.chart, pinned = excluded.pinned, "
                "updated_at = excluded.updated_at, user = excluded.user",
                (name, sql, chart_json, int(pinned), now, now, user, None if shared else user),
            )
            row = con.execute(_SELECT_SAVED + " WHERE name = ?", (name,)).fetchone()
        return _saved(row)

    def saved(self, *, pinned_only: bool = False) -> list[SavedQuery]:
        """Saved queries by name (only the pinned ones, for Home, with `pinned_only`)."""
        where = " WHERE pinned = 1" if pinned_only else ""
        with self._connect() as con:
            rows = con.execute(_SELECT_SAVED + where + " ORDER BY name COLLATE NOCASE").fetchall()
        return [_saved(r) for r in rows]

    def get(self, name: str) -> SavedQuery | None:
        with self._connect() as con:
            row = con.execute(_SELECT_SAVED + " WHERE name = ?", (name.strip(),)).fetchone()
        return None if row is None else _saved(row)

    def may_change(self, query: SavedQuery, user: str) -> bool:
        """Whether `user` may update, pin or delete `query` (others may copy it)."""
        return query.owner == user if query.owner is not None else user in self.admins

    def delete(self, name: str, *, user: str) -> None:
        """Forget a saved query (nothing happens if there is none by that name)."""
        name = name.strip()
        with self._connect(write=True) as con:
            self._check_owner(con, name, user)
            con.execute("DELETE FROM saved_queries WHERE name = ?", (name,))

    def set_pinned(self, name: str, pinned: bool, *, user: str) -> None:
        with self._connect(write=True) as con:
            self._check_owner(con, name.strip(), user)
            done = con.execute(
                "UPDATE saved_queries SET pinned = ?, updated_at = ? WHERE name = ?",
                (int(pinned), _now(), name.strip()),
            ).rowcount
        if not done:
            raise LakehouseError(f"There is no saved query named {name!r}.", title="Not found")

    def _check_owner(self, con: sqlite3.Connection, name: str, user: str) -> None:
        """Inside the write transaction, so the owner cannot change between check and write."""
        row = con.execute(_SELECT_SAVED + " WHERE name = ?", (name,)).fetchone()
        if row is None:
            return
        query = _saved(row)
        if not self.may_change(query, user):
            whose = f"belongs to {query.owner}" if query.owner else "is shared"
            raise LakehouseError(
                f"The saved query {name!r} {whose}: you may open it and save a copy under a "
                "new name, but not change, pin or delete it.",
                title="Not yours",
            )


_SELECT_SAVED = (
    "SELECT name, sql, chart, pinned, created_at, updated_at, user, owner FROM saved_queries"
)


def check_query_name(name: str) -> str:
    """The name without surrounding spaces; LakehouseError when it is empty or too long."""
    name = name.strip()
    if not name:
        raise LakehouseError("Give the query a name.", title="Invalid query name")
    if len(name) > NAME_MAX:
        raise LakehouseError(
            f"Query names have at most {NAME_MAX} characters (this one has {len(name)}).",
            title="Invalid query name",
        )
    if any(not c.isprintable() for c in name):
        raise LakehouseError(
            "Query names cannot contain line breaks or control characters.",
            title="Invalid query name",
        )
    return name


def _saved(row: tuple[Any, ...]) -> SavedQuery:
    name, sql, chart, pinned, created_at, updated_at, user, owner = row
    return SavedQuery(
        name=name,
        sql=sql,
        chart=None if chart is None else json.loads(chart),
        pinned=bool(pinned),
        created_at=_time(created_at),
        updated_at=_time(updated_at),
        user=user,
        owner=owner,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _storage_error(path: Path, e: sqlite3.Error) -> StorageError:
    return StorageError(
        f"{path}: {e}. Check that the state folder is writable and has free space.",
        title="The app's query store is unavailable",
    )


__all__ = ["QueryRun", "QueryStore", "SavedQuery", "check_query_name"]
