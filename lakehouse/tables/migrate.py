"""Lakes from before Delta: turn each `snapshot=<id>/` + `_current.json` table into a Delta table.

Kept snapshots become versions, oldest first, and the current one the latest version (after a
rollback the current snapshot is not the newest: it is committed last all the same). Parquet
parts are referenced where they are, not copied; a snapshot with a column type Delta cannot
store (UUID, TIME, unsigned integers...) is rewritten with the types publish would give it.
The pointer and manifests go only after every version is committed, so a migration killed
part-way is finished by the next run, and a finished table is left alone: it is idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
from deltalake import Schema
from deltalake.transaction import AddAction

from lakehouse import duck
from lakehouse.errors import LakehouseError, StorageError
from lakehouse.ids import new_id
from lakehouse.layers import Layer, quote_literal
from lakehouse.settings import Settings
from lakehouse.storage import ObjectNotFound, Storage
from lakehouse.tables import delta, delta_types, retention, snapshots
from lakehouse.tables.delta import META, commit_meta

CURRENT = "_current.json"
# What a rewritten snapshot's version records of where it came from (publish sets the rest).
_LABELS = ("migrated_from", "created_at", "restored_from")
MANIFEST = "_snapshot.json"


@dataclass
class Migrated:
    table: str  # layer.table
    versions: int = 0  # committed by this run
    rewritten: int = 0  # snapshots whose files were rewritten for Delta's types
    skipped: list[str] = field(default_factory=list)  # snapshot ids with no files left
    error: str | None = None


def legacy_tables(storage: Storage) -> list[tuple[Layer, str]]:
    """Silver and gold tables that still have a pointer."""
    return [
        (layer, name)
        for layer in delta.PUBLISHABLE
        for name in storage.list_dirs(f"{layer.value}/")
        if storage.exists(f"{layer.value}/{name}/{CURRENT}")
    ]


def migrate(settings: Settings, storage: Storage) -> list[Migrated]:
    """Migrate every legacy table; one table's failure is reported, the others still go."""
    out = []
    for layer, table in legacy_tables(storage):
        try:
            out.append(migrate_table(settings, storage, layer, table))
        except LakehouseError as e:
            out.append(Migrated(f"{layer.value}.{table}", error=f"{e.title}: {e}"))
    return out


def _read(storage: Storage, key: str) -> dict[str, Any] | None:
    try:
        raw: dict[str, Any] = json.loads(storage.get_bytes(key))
        return raw
    except ObjectNotFound:
        return None


def migrate_table(settings: Settings, storage: Storage, layer: Layer, table: str) -> Migrated:
    prefix = f"{layer.value}/{table}/"
    what = f"{layer.value}.{table}"
    result = Migrated(what)
    current = _read(storage, prefix + CURRENT)
    if current is None:
        return result
    kept = [
        m
        for folder in storage.list_dirs(prefix)
        if folder.startswith("snapshot=")
        and (m := _read(storage, f"{prefix}{folder}/{MANIFEST}")) is not None
        and m["snapshot_id"] != current["snapshot_id"]
    ]
    order = [*sorted(kept, key=lambda m: (m["created_at"], m["snapshot_id"])), current]
    loc = delta.location(storage, layer, table)
    done: list[str] = []
    if delta.is_table(loc):  # a run before this one stopped part-way
        dt = delta.open_table(loc, what)
        done = [d for h in reversed(dt.history()) if (d := commit_meta(h, "migrated_from"))]
    con = duck.connect(settings)
    try:
        for i, snap in enumerate(order):
            last = i == len(order) - 1
            if snap["snapshot_id"] in done and not (last and done[-1] != snap["snapshot_id"]):
                continue
            if not snap["files"] or not all(storage.exists(k) for k in snap["files"]):
                result.skipped.append(snap["snapshot_id"])
                continue
            rewritten = _commit(settings, storage, con, layer, table, snap)
            result.versions += 1
            result.rewritten += rewritten
    finally:
        con.close()
    # Every version is in the log: the legacy pointer and manifests can go.
    storage.delete([prefix + CURRENT])
    storage.delete([f"{prefix}snapshot={m['snapshot_id']}/{MANIFEST}" for m in order])
    return result


def _commit(
    settings: Settings,
    storage: Storage,
    con: duckdb.DuckDBPyConnection,
    layer: Layer,
    table: str,
    snap: dict[str, Any],
) -> int:
    """Commit one legacy snapshot as a version; 1 if its files had to be rewritten."""
    what = f"{layer.value}.{table}"
    meta = {
        f"{META}.publish": new_id(),
        f"{META}.migrated_from": snap["snapshot_id"],
        f"{META}.created_at": snap["created_at"],
        f"{META}.run_id": snap.get("run_id") or "",
        f"{META}.rows": str(snap["rows"]),
        f"{META}.bytes": str(snap["size_bytes"]),
    }
    if snap.get("restored_from"):
        meta[f"{META}.restored_from"] = snap["restored_from"]
    if snap.get("inputs") is not None:
        meta[f"{META}.inputs"] = json.dumps(snap["inputs"], sort_keys=True)
    scan = duck.parquet_scan([storage.uri(k) for k in snap["files"]])
    query = f"SELECT * FROM {scan}"
    try:
        if delta_types.compatible_select(con, query) != query:
            keep = {k: v for k, v in meta.items() if k.split(".", 1)[1] in _LABELS}
            snapshots.publish(
                settings, storage, con, layer, table, query, snap.get("run_id"),
                inputs=snap.get("inputs"), extra_meta=keep,
            )  # fmt: skip
            return 1
        counts = dict(
            con.execute(
                "SELECT file_name, num_rows FROM parquet_file_metadata(["
                + ", ".join(quote_literal(storage.uri(k)) for k in snap["files"])
                + "])"
            ).fetchall()
        )
        schema = Schema.from_arrow(con.execute(f"{query} LIMIT 0").to_arrow_table().schema)
    except duckdb.Error as e:
        raise StorageError(
            f"{what}: could not read snapshot {snap['snapshot_id']}: {e}", title="Migration failed"
        ) from e
    prefix = f"{layer.value}/{table}/"
    folder = f"{prefix}snapshot={snap['snapshot_id']}/"
    sizes = {o.key: o.size for o in storage.list_objects(folder)}
    adds: list[AddAction] = [
        AddAction(
            k.removeprefix(prefix),
            sizes[k],
            {},
            0,
            True,
            json.dumps({"numRecords": int(counts.get(storage.uri(k), 0))}),
        )
        for k in snap["files"]
    ]
    loc = delta.location(storage, layer, table)
    delta.commit(loc, what, schema, adds, meta, retention.table_config(settings))
    return 0
