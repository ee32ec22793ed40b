"""Silver and gold tables as Delta Lake tables: publish, current version, history, time travel,
rollback and retention.

A publish writes the rows as Parquet parts (DuckDB, streaming) into a fresh folder inside the
table's folder, then commits them as one Delta overwrite with the run id, the producing SQL and
the input tables' versions in the commit's metadata. Until the commit readers see the previous
version whole; a writer killed before it leaves only unreferenced files, which retention
removes. A table's *snapshot* is the Delta version its readers see: `snapshot_id` is that
version number as text.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import DeltaError
from deltalake.transaction import AddAction

from lakehouse import duck
from lakehouse.errors import LakehouseError, QueryError, TableNotFoundError
from lakehouse.ids import new_id
from lakehouse.layers import Layer, check_table_name, quote_literal
from lakehouse.settings import Settings
from lakehouse.storage import Storage, leftovers
from lakehouse.storage.staging import folder as staging_folder
from lakehouse.tables import delta, delta_types
from lakehouse.tables.delta import META, PUBLISHABLE, Location, commit_meta
from lakehouse.tables.retention import table_config, vacuum

if TYPE_CHECKING:
    import pyarrow as pa

# DuckDB starts a new part file past this size: parts upload in parallel-friendly pieces.
PART_SIZE = "256MB"
# The producing SQL kept in a commit's metadata (the log is read on every catalog listing).
SQL_CHARS = 20_000


@dataclass(frozen=True)
class Snapshot:
    """One version of a silver or gold table."""

    layer: str
    table: str
    snapshot_id: str  # the Delta version, as text
    files: list[str]  # storage keys of its data files (empty in `history` listings)
    rows: int
    size_bytes: int
    schema: list[tuple[str, str]]  # DuckDB types (empty in `history` listings)
    created_at: str
    run_id: str | None
    restored_from: str | None = None
    # `layer.table` → the version (bronze: newest batch) each input was at when this was
    # built. None when unknown (Arrow input, SQL that reads more than tables).
    inputs: dict[str, str] | None = None
    sql: str | None = None
    operation: str = "WRITE"

    @property
    def version(self) -> int:
        return int(self.snapshot_id)

    @property
    def qualified_name(self) -> str:
        return f"{self.layer}.{self.table}"


def _check(layer: Layer | str, table: str) -> Layer:
    layer = Layer(layer)
    if layer not in PUBLISHABLE:
        raise LakehouseError(
            f"Delta tables live in silver and gold, not {layer.value}.", title="Wrong layer"
        )
    check_table_name(table)
    return layer


def _loc(storage: Storage, layer: Layer, table: str) -> Location:
    return delta.location(storage, layer, table)


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
    sql: str | None = None,
    extra_meta: dict[str, str] | None = None,
    staging: Path | None = None,
) -> Snapshot:
    """Write `data` (SQL run on `con`, or Arrow) as the table's new version (an overwrite).

    The parts go to `<staging>/parts/`: a private working folder of the caller's (a locked
    connection may write there and nowhere else), or one made for this publish."""
    layer = _check(layer, table)
    what = f"{layer.value}.{table}"
    publish_id = new_id()
    own = con is None
    con = con or duck.connect(settings)
    try:
        with contextlib.ExitStack() as stack:
            if staging is None:
                staging = stack.enter_context(staging_folder(settings, f"publish-{publish_id}"))
            out = staging / "parts"
            query = data if isinstance(data, str) else "SELECT * FROM _publish_input"
            if not isinstance(data, str):
                con.register("_publish_input", data)
            try:
                query = delta_types.compatible_select(con, query)
                empty = con.execute(f"SELECT * FROM ({query}) LIMIT 0").to_arrow_table().schema
                rows = con.execute(
                    f"COPY ({query}) TO {quote_literal(str(out))} (FORMAT parquet, "
                    f"COMPRESSION zstd, FILE_SIZE_BYTES {quote_literal(part_size)}, "
                    "FILENAME_PATTERN 'part-{i}')"
                ).fetchall()[0][0]
            except duckdb.Error as e:
                raise QueryError(str(e), title=f"Could not build {what}") from e
            finally:
                if not isinstance(data, str):
                    con.unregister("_publish_input")
            parts = sorted(out.glob("part-*.parquet"), key=lambda p: int(p.stem.split("-")[1]))
            schema = delta.schema_of(parts, empty)
            folder = f"{layer.value}/{table}/data-{publish_id}/"
            adds: list[AddAction] = [
                delta.add_action(f"data-{publish_id}/{p.name}", p) for p in parts
            ]
            size = sum(p.stat().st_size for p in parts)
            meta = {
                f"{META}.publish": publish_id,
                f"{META}.run_id": run_id or "",
                f"{META}.rows": str(int(rows)),
                f"{META}.bytes": str(size),
            }
            meta |= {
                f"{META}.{k.removeprefix(META + '.')}": v for k, v in (extra_meta or {}).items()
            }
            if inputs is not None:
                meta[f"{META}.inputs"] = json.dumps(inputs, sort_keys=True)
            if sql or isinstance(data, str):
                meta[f"{META}.sql"] = (sql or str(data))[:SQL_CHARS]
            leftovers.sweep(settings, storage)
            try:
                for part in parts:
                    storage.put_file(folder + part.name, part, move=True)
                delta.commit(
                    _loc(storage, layer, table), what, schema, adds, meta, table_config(settings)
                )
            except BaseException:
                # Not committed (or unknown: a lost reply): the files are unreferenced either
                # way; if the commit did land, its version reads a missing file, so keep them.
                if not _committed(storage, layer, table, publish_id):
                    leftovers.remove(settings, storage, folder)
                raise
    finally:
        if own:
            con.close()
    snap = _find(storage, layer, table, publish_id)
    # Past the commit point: the new version is current, so housekeeping failing (storage
    # gone a moment later) must not report the publish as failed; the next publish retries.
    with contextlib.suppress(LakehouseError):
        vacuum(settings, storage, layer, table)
    return snap


def _committed(storage: Storage, layer: Layer, table: str, publish_id: str) -> bool:
    with contextlib.suppress(LakehouseError, DeltaError, OSError):
        _find(storage, layer, table, publish_id)
        return True
    return False


def _find(storage: Storage, layer: Layer, table: str, publish_id: str) -> Snapshot:
    """The version our commit became (another writer may have committed after it)."""
    what = f"{layer.value}.{table}"
    with delta.latest(_loc(storage, layer, table), what) as dt:
        for h in dt.history(limit=delta.COMMIT_ATTEMPTS + 16):
            if h.get(f"{META}.publish") == publish_id:
                found = delta.Version(
                    int(h["version"]), dt.version(), int(h.get("timestamp", 0)),
                    str(h.get("operation")), h,
                )  # fmt: skip
                if found.version == dt.version():  # nobody committed since: no second load
                    return _with_files(dt, layer, table, found, what)
                break
        else:
            raise LakehouseError(f"{what}: the commit is not in the log.", title="Publish lost")
    return _load(storage, layer, table, found.version)


def _snapshot(layer: Layer, table: str, v: delta.Version, **fields: object) -> Snapshot:
    info = v.info
    inputs_text = commit_meta(info, "inputs")
    restored = (
        info.get("operationParameters", {}).get("version") if v.operation == "RESTORE" else None
    )
    base = Snapshot(
        layer=layer.value,
        table=table,
        snapshot_id=str(v.version),
        files=[],
        rows=int(
            commit_meta(info, "rows")
            or info.get("operationMetrics", {}).get("num_added_rows", 0)
            or 0
        ),
        size_bytes=int(commit_meta(info, "bytes") or 0),
        schema=[],
        # A migrated version keeps the time its snapshot was made.
        created_at=commit_meta(info, "created_at")
        or datetime.fromtimestamp(v.timestamp_ms / 1000, UTC).isoformat(),
        run_id=commit_meta(info, "run_id") or None,
        restored_from=commit_meta(info, "restored_from")
        or (str(restored) if restored is not None else None),
        inputs=json.loads(inputs_text) if inputs_text else None,
        sql=commit_meta(info, "sql"),
        operation=v.operation,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def _load(storage: Storage, layer: Layer, table: str, version: int | None = None) -> Snapshot:
    what = f"{layer.value}.{table}"
    loc = _loc(storage, layer, table)
    with delta.latest(loc, what) as dt:
        if version is None:
            v = delta.data_version(dt, what)
            snap = _with_files(dt, layer, table, v, what)
        else:
            v = delta.version_info(dt, version, what)
    if version is not None:
        snap = _with_files(delta.open_table(loc, what, version), layer, table, v, what)
    return snap


def _with_files(dt: DeltaTable, layer: Layer, table: str, v: delta.Version, what: str) -> Snapshot:
    keys, sizes, rows = delta.files_of(dt, layer, table, what)
    total = sum(r or 0 for r in rows) if all(r is not None for r in rows) else None
    snap = _snapshot(
        layer, table, v, files=keys, size_bytes=sum(sizes), schema=delta_types.duckdb_columns(dt)
    )
    return replace(snap, rows=total) if total is not None else snap


def current(storage: Storage, layer: Layer | str, table: str) -> Snapshot:
    layer = _check(layer, table)
    return _load(storage, layer, table)


def history(storage: Storage, layer: Layer | str, table: str) -> list[Snapshot]:
    """Versions that changed data, newest first, as far back as the log goes (files and schema
    are left empty: `as_of` loads one fully)."""
    layer = _check(layer, table)
    what = f"{layer.value}.{table}"
    with delta.latest(_loc(storage, layer, table), what) as dt:
        try:
            entries = dt.history()
        except (DeltaError, OSError) as e:
            raise delta.translate(e, what) from e
        latest = dt.version()
    return [
        _snapshot(
            layer,
            table,
            delta.Version(
                int(h["version"]), latest, int(h.get("timestamp", 0)), str(h.get("operation")), h
            ),
        )
        for h in entries
        if h.get("operation") not in delta.NO_DATA_CHANGE
    ]


def as_of(storage: Storage, layer: Layer | str, table: str, when: str | int | datetime) -> Snapshot:
    """The table at a version (its number) or as it was at a time."""
    layer = _check(layer, table)
    what = f"{layer.value}.{table}"
    if isinstance(when, int) or (isinstance(when, str) and when.isdigit()):
        version = int(when)
    else:
        if isinstance(when, str):
            try:
                when = datetime.fromisoformat(when)
            except ValueError as e:
                raise TableNotFoundError(
                    f"{what} has no version {when!r} (give a version number or an ISO time).",
                    title="No such version",
                ) from e
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        older = [
            s
            for s in history(storage, layer, table)
            if datetime.fromisoformat(s.created_at) <= when
        ]
        if not older:
            raise TableNotFoundError(
                f"{what} has no version at or before {when.isoformat()}.", title="No such version"
            )
        version = older[0].version
    try:
        snap = _load(storage, layer, table, version)
    except LakehouseError as e:
        raise TableNotFoundError(
            f"{what} has no version {version}: {e}", title="No such version"
        ) from e
    _check_files(storage, snap)
    return snap


def _check_files(storage: Storage, snap: Snapshot) -> None:
    if snap.files and not storage.exists(snap.files[0]):
        raise TableNotFoundError(
            f"{snap.qualified_name} version {snap.snapshot_id} is past its retention: its files "
            "were removed (RATATOUILLE_TABLE_HISTORY_HOURS).",
            title="Version no longer kept",
        )


def restore(storage: Storage, layer: Layer | str, table: str, snapshot_id: str) -> Snapshot:
    """Make an earlier version current again: a new version with its files (a rollback is one
    commit; newer versions stay in the history, so you can roll forward)."""
    layer = _check(layer, table)
    what = f"{layer.value}.{table}"
    target = as_of(storage, layer, table, snapshot_id)
    loc = _loc(storage, layer, table)
    publish_id = new_id()
    dt = delta.open_table(loc, what)
    props = CommitProperties(
        custom_metadata={
            f"{META}.publish": publish_id,
            f"{META}.restored_from": target.snapshot_id,
            f"{META}.rows": str(target.rows),
            f"{META}.bytes": str(target.size_bytes),
            f"{META}.run_id": target.run_id or "",
            **(
                {f"{META}.inputs": json.dumps(target.inputs, sort_keys=True)}
                if target.inputs is not None
                else {}
            ),
            **({f"{META}.sql": target.sql} if target.sql else {}),
        }
    )
    try:
        dt.restore(target.version, commit_properties=props)
    except (DeltaError, OSError) as e:
        raise delta.translate(e, what) from e
    return _find(storage, layer, table, publish_id)
