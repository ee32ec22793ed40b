"""Silver and gold tables as snapshots: `<layer>/<table>/snapshot=<id>/part-*.parquet`.

A snapshot is complete once `_snapshot.json` is in its folder; it becomes *current* when
`<layer>/<table>/_current.json` (one PUT or one rename) names it. Readers resolve the pointer
first, so they see either the old table or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lakehouse import duck
from lakehouse.errors import LakehouseError, QueryError, TableNotFoundError
from lakehouse.ids import id_time, new_id, now_iso
from lakehouse.layers import Layer, check_table_name, quote_literal
from lakehouse.settings import Settings
from lakehouse.storage import ObjectNotFound, Storage, leftovers
from lakehouse.storage.staging import folder as staging_folder

if TYPE_CHECKING:
    import pyarrow as pa

CURRENT = "_current.json"
SNAPSHOT = "_snapshot.json"
# DuckDB starts a new part file past this size: parts upload in parallel-friendly pieces.
PART_SIZE = "256MB"
# A snapshot folder without manifest this old is a crashed publish, safe to remove.
ORPHAN_AGE = timedelta(hours=1)

PUBLISHABLE = (Layer.SILVER, Layer.GOLD)


@dataclass(frozen=True)
class Snapshot:
    layer: str
    table: str
    snapshot_id: str
    files: list[str]  # storage keys
    rows: int
    size_bytes: int
    schema: list[tuple[str, str]]
    created_at: str
    run_id: str | None
    restored_from: str | None = None
    format_version: int = 1
    # The tables the snapshot was built from: `layer.table` → their snapshot (bronze: newest
    # batch) at the time. None when unknown (Arrow input, SQL that reads more than tables).
    inputs: dict[str, str] | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Snapshot:
        raw: dict[str, Any] = json.loads(data)
        raw["schema"] = [tuple(c) for c in raw["schema"]]
        return cls(**raw)


def table_prefix(layer: Layer, table: str) -> str:
    return f"{layer.value}/{table}/"


def _check(layer: Layer | str, table: str) -> Layer:
    layer = Layer(layer)
    if layer not in PUBLISHABLE:
        raise LakehouseError(
            f"Snapshots live in silver and gold, not {layer.value}.", title="Wrong layer"
        )
    check_table_name(table)
    return layer


def publish(
    settings: Settings,
    storage: Storage,
    con: duckdb.DuckDBPyConnection | None,
    layer: Layer | str,
    table: str,
    data: str | pa.Table | pa.RecordBatchReader,
    run_id: str | None = None,
    part_size: str = PART_SIZE,
    inputs: dict[str, str] | None = None,
) -> Snapshot:
    """Write `data` (SQL run on `con`, or Arrow) as a new snapshot and make it current."""
    layer = _check(layer, table)
    snapshot_id = new_id()
    own = con is None
    con = con or duck.connect(settings)
    try:
        with staging_folder(settings, f"publish-{snapshot_id}", create=False) as staging:
            if isinstance(data, str):
                query = data
            else:
                con.register("_publish_input", data)
                query = "SELECT * FROM _publish_input"
            try:
                rows = con.execute(
                    f"COPY ({query}) TO {quote_literal(str(staging))} (FORMAT parquet, "
                    f"COMPRESSION zstd, FILE_SIZE_BYTES {quote_literal(part_size)}, "
                    "FILENAME_PATTERN 'part-{i}')"
                ).fetchall()[0][0]
                glob = quote_literal(str(staging / "*.parquet"))
                schema = con.execute(f"DESCRIBE SELECT * FROM read_parquet({glob})").fetchall()
            except duckdb.Error as e:
                raise QueryError(str(e), title=f"Could not build {layer.value}.{table}") from e
            finally:
                if not isinstance(data, str):
                    con.unregister("_publish_input")
            snap = _upload(
                settings,
                storage,
                layer,
                table,
                snapshot_id,
                staging,
                int(rows),
                [(c[0], c[1]) for c in schema],
                run_id,
                inputs,
            )
    finally:
        if own:
            con.close()
    # Past the commit point: the snapshot is current, so housekeeping failing (storage gone
    # a moment later) must not report the publish as failed; the next publish prunes.
    with contextlib.suppress(LakehouseError):
        prune(
            storage,
            layer,
            table,
            settings.snapshots_keep,
            timedelta(seconds=settings.snapshots_grace_s),
        )
    return snap


def _upload(
    settings: Settings,
    storage: Storage,
    layer: Layer,
    table: str,
    snapshot_id: str,
    staging: Path,
    rows: int,
    schema: list[tuple[str, str]],
    run_id: str | None,
    inputs: dict[str, str] | None = None,
) -> Snapshot:
    folder = f"{table_prefix(layer, table)}snapshot={snapshot_id}/"
    parts = sorted(staging.glob("part-*.parquet"), key=lambda p: int(p.stem.split("-")[1]))
    files, size = [], 0
    leftovers.sweep(settings, storage)
    try:
        for part in parts:
            size += part.stat().st_size
            key = folder + part.name
            storage.put_file(key, part, move=True)
            files.append(key)
        snap = Snapshot(
            layer.value, table, snapshot_id, files, rows, size, schema, now_iso(), run_id,
            inputs=inputs,
        )  # fmt: skip
        storage.put_bytes(folder + SNAPSHOT, snap.to_json())
    except BaseException:
        leftovers.remove(settings, storage, folder)
        raise
    # Not undone if it fails: the pointer may have been written all the same.
    storage.put_bytes(table_prefix(layer, table) + CURRENT, snap.to_json())  # the commit point
    return snap


def current(storage: Storage, layer: Layer | str, table: str) -> Snapshot:
    layer = _check(layer, table)
    try:
        return Snapshot.from_json(storage.get_bytes(table_prefix(layer, table) + CURRENT))
    except ObjectNotFound as e:
        raise TableNotFoundError(f"There is no table {layer.value}.{table}.") from e


def history(storage: Storage, layer: Layer | str, table: str) -> list[Snapshot]:
    """Complete snapshots still kept, newest first."""
    layer = _check(layer, table)
    out = []
    for folder in reversed(storage.list_dirs(table_prefix(layer, table))):
        if folder.startswith("snapshot="):
            try:
                out.append(
                    Snapshot.from_json(
                        storage.get_bytes(f"{table_prefix(layer, table)}{folder}/{SNAPSHOT}")
                    )
                )
            except ObjectNotFound:
                continue
    return out


def as_of(storage: Storage, layer: Layer | str, table: str, when: str | datetime) -> Snapshot:
    """The snapshot with that id, or the one current at that time."""
    snaps = history(storage, layer, table)
    if isinstance(when, str):
        for s in snaps:
            if s.snapshot_id == when:
                return s
        try:
            when = datetime.fromisoformat(when)
        except ValueError as e:
            raise TableNotFoundError(
                f"{layer}.{table} has no snapshot {when!r} (give a snapshot id or an ISO time).",
                title="No such snapshot",
            ) from e
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    for s in snaps:
        if datetime.fromisoformat(s.created_at) <= when:
            return s
    raise TableNotFoundError(
        f"{layer}.{table} has no kept snapshot at or before {when.isoformat()}.",
        title="No such snapshot",
    )


def restore(storage: Storage, layer: Layer | str, table: str, snapshot_id: str) -> Snapshot:
    """Make a kept snapshot current again (a rollback is one pointer write)."""
    layer = _check(layer, table)
    found = [s for s in history(storage, layer, table) if s.snapshot_id == snapshot_id]
    if not found:
        raise TableNotFoundError(f"{layer.value}.{table} has no kept snapshot {snapshot_id!r}.")
    snap = found[0]
    restored = Snapshot(**{**asdict(snap), "restored_from": snapshot_id, "created_at": now_iso()})
    storage.put_bytes(table_prefix(layer, table) + CURRENT, restored.to_json())
    return restored


def prune(storage: Storage, layer: Layer, table: str, keep: int, grace: timedelta) -> int:
    """Delete complete snapshots past the newest `keep` (never the current one), old orphans.

    A snapshot replaced less than `grace` ago stays: a query that resolved it just before the
    switch is still reading its files.
    """
    prefix = table_prefix(layer, table)
    cur = current(storage, layer, table).snapshot_id
    now = datetime.now(UTC)
    folders = storage.list_dirs(prefix)
    ids = sorted(
        (f.removeprefix("snapshot=") for f in folders if f.startswith("snapshot=")), reverse=True
    )
    complete = history(storage, layer, table)  # newest first
    done = {s.snapshot_id for s in complete}
    # The grace runs from when the newer snapshot was written, not from when its build began.
    doomed = [
        old.snapshot_id
        for newer, old in zip(complete[keep - 1 :], complete[keep:], strict=False)
        if old.snapshot_id != cur and now - datetime.fromisoformat(newer.created_at) > grace
    ]
    doomed += [i for i in ids if i not in done and now - id_time(i) > ORPHAN_AGE]
    for i in doomed:
        storage.delete_prefix(f"{prefix}snapshot={i}/")
    return len(doomed)
