"""Which tables a table was built from, and which were built from it.

Every silver and gold version records its inputs (`layer.table` → their version at build
time) in its Delta commit's metadata, so lineage needs no separate graph: upstream is the
current version's inputs, downstream is every table whose current version names this one.
That reads every silver/gold table's log tail (a few small reads each), which is fine for
hundreds of tables.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, cast

from lakehouse.errors import TableNotFoundError
from lakehouse.layers import Layer, check_table_name
from lakehouse.storage import Storage
from lakehouse.tables import snapshots
from lakehouse.tables.delta import PUBLISHABLE
from lakehouse.tables.snapshots import Snapshot

# Pointer reads go out side by side: on S3 each one is a round trip.
_READERS = 8


@dataclass(frozen=True)
class Lineage:
    """`layer.table` names, sorted: what the table was built from and what was built from it."""

    upstream: list[str]
    downstream: list[str]


@dataclass(frozen=True)
class SnapshotVersion:
    """A version of the table and whether readers see it now."""

    snapshot: Snapshot
    current: bool


class HasStorage(Protocol):
    """The facade (`Lakehouse`), or anything else that holds a lake's storage."""

    @property
    def storage(self) -> Storage: ...


def _storage(lake_or_storage: HasStorage | Storage) -> Storage:
    held: Storage | None = getattr(lake_or_storage, "storage", None)
    return held if held is not None else cast("Storage", lake_or_storage)


def _current_or_none(storage: Storage, layer: Layer, table: str) -> Snapshot | None:
    try:
        return snapshots.current(storage, layer, table)
    except TableNotFoundError:  # a folder with nothing committed yet
        return None


def upstream(lake_or_storage: HasStorage | Storage, layer: Layer | str, table: str) -> list[str]:
    """The tables the current snapshot was built from (bronze tables have none)."""
    layer = Layer(layer)
    check_table_name(table)
    if layer not in PUBLISHABLE:
        return []
    snap = snapshots.current(_storage(lake_or_storage), layer, table)
    return sorted(snap.inputs or {})


def downstream(lake_or_storage: HasStorage | Storage, layer: Layer | str, table: str) -> list[str]:
    """The tables whose current snapshot was built from this table."""
    name = f"{Layer(layer).value}.{check_table_name(table)}"
    return sorted(
        qualified
        for qualified, snap in current_snapshots(_storage(lake_or_storage)).items()
        if name in (snap.inputs or {})
    )


def lineage(lake_or_storage: HasStorage | Storage, layer: Layer | str, table: str) -> Lineage:
    return Lineage(
        upstream(lake_or_storage, layer, table), downstream(lake_or_storage, layer, table)
    )


def current_snapshots(storage: Storage) -> dict[str, Snapshot]:
    """`layer.table` → current snapshot, for every silver and gold table."""
    names = [(lay, n) for lay in PUBLISHABLE for n in storage.list_dirs(f"{lay.value}/")]
    with ThreadPoolExecutor(_READERS, thread_name_prefix="lineage") as pool:
        found = pool.map(lambda ln: _current_or_none(storage, *ln), names)
        return {f"{s.layer}.{s.table}": s for s in found if s is not None}


def snapshot_history(
    lake_or_storage: HasStorage | Storage, layer: Layer | str, table: str
) -> list[SnapshotVersion]:
    """The table's versions, newest first; the newest is current (a rollback is a new version
    with an older one's files, so rolling forward is a rollback too)."""
    versions = snapshots.history(_storage(lake_or_storage), layer, table)
    return [SnapshotVersion(s, i == 0) for i, s in enumerate(versions)]


__all__ = [
    "HasStorage",
    "Lineage",
    "SnapshotVersion",
    "current_snapshots",
    "downstream",
    "lineage",
    "snapshot_history",
    "upstream",
]
