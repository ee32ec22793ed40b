"""Which tables a table was built from, and which were built from it.

Every silver and gold snapshot records its inputs (`layer.table` → their snapshot id at build
time), so lineage needs no separate graph: upstream is the current snapshot's inputs, downstream
is every table whose current snapshot names this one. That scans the catalog's pointers (one
small read per silver/gold table), which is fine for hundreds of tables.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lakehouse import guard, snapshots
from lakehouse.catalog import TableInfo
from lakehouse.errors import LakehouseError, TableNotFoundError
from lakehouse.lake import Lakehouse
from lakehouse.layers import TABLE_LAYERS, Layer, check_table_name
from lakehouse.snapshots import PUBLISHABLE, Snapshot
from lakehouse.storage import Storage

# Pointer reads go out side by side: on S3 each one is a round trip.
_READERS = 8


@dataclass(frozen=True)
class Lineage:
    """`layer.table` names, sorted: what the table was built from and what was built from it."""

    upstream: list[str]
    downstream: list[str]


@dataclass(frozen=True)
class HistoryEntry:
    """A kept snapshot and whether the table's pointer names it now."""

    snapshot: Snapshot
    current: bool


@dataclass(frozen=True)
class QueryInputs:
    """What a query reads: `layer.table` → current snapshot id of each lake table it names
    (every table when the query cannot be parsed), and the tables it names that do not exist."""

    snapshots: dict[str, str]
    missing: list[str]


def _storage(lake_or_storage: Lakehouse | Storage) -> Storage:
    return lake_or_storage.storage if isinstance(lake_or_storage, Lakehouse) else lake_or_storage


def _current_or_none(storage: Storage, layer: Layer, table: str) -> Snapshot | None:
    try:
        return snapshots.current(storage, layer, table)
    except TableNotFoundError:  # a folder with nothing committed yet
        return None


def upstream(lake_or_storage: Lakehouse | Storage, layer: Layer | str, table: str) -> list[str]:
    """The tables the current snapshot was built from (bronze tables have none)."""
    layer = Layer(layer)
    check_table_name(table)
    if layer not in PUBLISHABLE:
        return []
    snap = snapshots.current(_storage(lake_or_storage), layer, table)
    return sorted(snap.inputs or {})


def downstream(lake_or_storage: Lakehouse | Storage, layer: Layer | str, table: str) -> list[str]:
    """The tables whose current snapshot was built from this table."""
    name = f"{Layer(layer).value}.{check_table_name(table)}"
    return sorted(
        qualified
        for qualified, snap in current_snapshots(_storage(lake_or_storage)).items()
        if name in (snap.inputs or {})
    )


def lineage(lake_or_storage: Lakehouse | Storage, layer: Layer | str, table: str) -> Lineage:
    return Lineage(
        upstream(lake_or_storage, layer, table), downstream(lake_or_storage, layer, table)
    )


def current_snapshots(storage: Storage) -> dict[str, Snapshot]:
    """`layer.table` → current snapshot, for every silver and gold table."""
    names = [(lay, n) for lay in PUBLISHABLE for n in storage.list_dirs(f"{lay.value}/")]
    with ThreadPoolExecutor(_READERS, thread_name_prefix="lineage") as pool:
        found = pool.map(lambda ln: _current_or_none(storage, *ln), names)
        return {f"{s.layer}.{s.table}": s for s in found if s is not None}


def query_inputs(sql: str, tables: list[TableInfo]) -> QueryInputs:
    """The snapshots a query's result depends on, from a catalog listing (`Lakehouse.tables()`).

    A cache keyed by them recomputes exactly when one of those tables gets a new snapshot. A
    query the guard refuses depends on everything: running it will say what is wrong.
    """
    by_name = {t.qualified_name: t.snapshot_id for t in tables}
    try:
        read = guard.check_query(sql, tuple(lay.value for lay in TABLE_LAYERS)).tables
    except LakehouseError:
        return QueryInputs(by_name, [])
    names = sorted(f"{lay}.{name}" for lay, name in read)
    return QueryInputs(
        {n: by_name[n] for n in names if n in by_name}, [n for n in names if n not in by_name]
    )


def snapshot_history(
    lake_or_storage: Lakehouse | Storage, layer: Layer | str, table: str
) -> list[HistoryEntry]:
    """Kept snapshots, newest first, with the current one marked (after a rollback it is not
    the newest)."""
    storage = _storage(lake_or_storage)
    current = snapshots.current(storage, layer, table).snapshot_id
    return [
        HistoryEntry(s, s.snapshot_id == current) for s in snapshots.history(storage, layer, table)
    ]


__all__ = [
    "HistoryEntry",
    "Lineage",
    "QueryInputs",
    "current_snapshots",
    "downstream",
    "lineage",
    "query_inputs",
    "snapshot_history",
    "upstream",
]
