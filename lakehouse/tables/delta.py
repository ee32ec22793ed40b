"""Delta Lake I/O (delta-rs): where a table lives, what it holds now, and the commit.

Silver and gold tables are Delta tables: `<layer>/<table>/` holds the Parquet parts and
`_delta_log/`. DuckDB writes the parts (its Parquet writer is the fast one); delta-rs commits
them as one overwrite, atomically (a put-if-absent of the next log entry: a rename on local
disk, an `If-None-Match: *` PUT on S3). Readers get a version's file list from the log and
read those files, so nothing half-written is ever visible.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from lakehouse.errors import LakehouseError, StorageError, TableNotFoundError
from lakehouse.layers import Layer
from lakehouse.settings import Settings

if TYPE_CHECKING:
    from lakehouse.storage import Storage

LOG = "_delta_log"
# Commit metadata this product writes (Delta keeps it in the version's commitInfo).
META = "ratatouille"
# Operations that change no rows: a table's data version is the newest commit not among them.
NO_DATA_CHANGE = frozenset({"VACUUM START", "VACUUM END", "SET TBLPROPERTIES", "OPTIMIZE"})
# Two writers of one table: the loser re-reads the log and commits on top (they serialize).
COMMIT_ATTEMPTS = 20
PUBLISHABLE = (Layer.SILVER, Layer.GOLD)
# Past this, a hung S3 request fails instead of holding a pipeline run for minutes.
_S3_TIMEOUTS = {
    "connect_timeout": "5s",
    "timeout": "120s",
    "max_retries": "3",
    "retry_timeout": "10s",
}


def storage_options(settings: Settings, *, readonly: bool = False) -> dict[str, str]:
    """The lake's S3 as delta-rs / object_store options (what Polars, Daft and deltalake take);
    empty for a local lake. `readonly` uses the playground's read-only key when one is set."""
    if settings.storage != "s3":
        return {}
    key, secret = settings.s3_access_key, settings.s3_secret_key
    if readonly and settings.s3_query_access_key:
        key, secret = settings.s3_query_access_key, settings.s3_query_secret_key
    opts = {
        "AWS_REGION": settings.s3_region,
        "AWS_ALLOW_HTTP": "false" if settings.s3_use_ssl else "true",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "true" if settings.s3_url_style == "vhost" else "false",
    }
    if key:
        opts["AWS_ACCESS_KEY_ID"] = key
    if secret:
        opts["AWS_SECRET_ACCESS_KEY"] = secret.get_secret_value()
    if settings.s3_endpoint:
        scheme = "https" if settings.s3_use_ssl else "http"
        opts["AWS_ENDPOINT_URL"] = f"{scheme}://{settings.s3_endpoint}"
    return opts


def table_uri(settings: Settings, layer: Layer | str, table: str) -> str:
    """Where other engines find the table: a local folder or `s3://<bucket>/<table>`."""
    layer = Layer(layer)
    if settings.storage == "s3":
        bucket = {
            Layer.BRONZE: settings.bucket_bronze,
            Layer.SILVER: settings.bucket_silver,
            Layer.GOLD: settings.bucket_gold,
            Layer.LANDING: settings.bucket_landing,
        }[layer]
        return f"s3://{bucket}/{table}"
    return str(settings.lake_root.resolve() / layer.value / table)


@dataclass(frozen=True)
class Location:
    uri: str
    options: dict[str, str]


def location(storage: Storage, layer: Layer, table: str) -> Location:
    settings: Settings | None = getattr(storage, "settings", None)
    options = storage_options(settings) if settings is not None else {}
    if options:
        options |= _S3_TIMEOUTS
    return Location(storage.uri(f"{layer.value}/{table}"), options)


def translate(e: Exception, what: str) -> LakehouseError:
    """A delta-rs error as something a person can act on."""
    text = str(e)
    if isinstance(e, DeltaTableNotFound) or "no files in log segment" in text.lower():
        return TableNotFoundError(f"There is no table {what}.")
    if re.search(r"(?i)connect|dns|timed? ?out|connection refused|error sending request", text):
        return StorageError(f"{what}: {text}", title="S3 unreachable")
    if re.search(r"(?i)access denied|forbidden|invalidaccesskeyid|signature", text):
        return StorageError(f"{what}: S3 refused the credentials: {text}", title="S3 access denied")
    return StorageError(f"{what}: {text}", title="Delta table error")


def open_table(loc: Location, what: str, version: int | None = None) -> DeltaTable:
    try:
        return DeltaTable(loc.uri, version=version, storage_options=loc.options or None)
    except (DeltaError, OSError) as e:
        raise translate(e, what) from e


_CACHE: dict[tuple[str, tuple[tuple[str, str], ...]], DeltaTable] = {}
_CACHE_LOCKS: dict[tuple[str, tuple[tuple[str, str], ...]], threading.Lock] = {}
_CACHE_GUARD = threading.Lock()


@contextmanager
def latest(loc: Location, what: str) -> Iterator[DeltaTable]:
    """The table at its newest version, for reading while the block runs.

    Tables stay loaded per process and catch up with `update_incremental` (new log entries
    only): a full load lists and reads the log (~40 ms on S3 with a few dozen versions), and
    the catalog reads every table before each playground query. One thread at a time per table:
    a DeltaTable is not meant to be updated while another thread reads it."""
    key = (loc.uri, tuple(sorted(loc.options.items())))
    with _CACHE_GUARD:
        lock = _CACHE_LOCKS.setdefault(key, threading.Lock())
    with lock:
        dt = _CACHE.get(key)
        try:
            if dt is None:
                dt = _CACHE[key] = open_table(loc, what)
            else:
                dt.update_incremental()
        except (DeltaError, OSError) as e:
            _CACHE.pop(key, None)  # gone, or replaced by a new table: load afresh next time
            raise translate(e, what) from e
        except LakehouseError:
            _CACHE.pop(key, None)
            raise
        yield dt


def is_table(loc: Location) -> bool:
    try:
        return DeltaTable.is_deltatable(loc.uri, storage_options=loc.options or None)
    except (DeltaError, OSError) as e:
        raise translate(e, loc.uri) from e


# -- writing ----------------------------------------------------------------------------------


def add_action(path: str, file: Path) -> AddAction:
    """The log entry for one part DuckDB wrote (row and null counts from its footer)."""
    meta = pq.ParquetFile(file).metadata
    nulls: dict[str, int] = {}
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for i in range(group.num_columns):
            chunk = group.column(i)
            stats = chunk.statistics
            # Nested columns have no single null count in Delta's stats; leave them out.
            if "." not in chunk.path_in_schema and stats is not None and stats.has_null_count:
                nulls[chunk.path_in_schema] = nulls.get(chunk.path_in_schema, 0) + stats.null_count
    st = file.stat()
    stats_json = json.dumps({"numRecords": meta.num_rows, "nullCount": nulls})
    return AddAction(path, st.st_size, {}, int(st.st_mtime * 1000), True, stats_json)


def schema_of(files: list[Path], empty: pa.Schema) -> Schema:
    arrow = pq.read_schema(files[0]) if files else empty
    try:
        return Schema.from_arrow(arrow.remove_metadata())
    except (DeltaError, ValueError, TypeError) as e:
        raise LakehouseError(
            f"A column has a type Delta Lake cannot store: {e}", title="Unsupported column type"
        ) from e


def commit(
    loc: Location,
    what: str,
    schema: Schema,
    adds: list[AddAction],
    metadata: dict[str, str],
    configuration: dict[str, str],
) -> None:
    """Commit `adds` as the table's new content (an overwrite), creating the table if needed.

    A concurrent commit makes delta-rs refuse ours; we read the log again and commit on top,
    so two publishes serialize and the last one to commit is current."""
    props = CommitProperties(custom_metadata=metadata, max_commit_retries=0)
    last: Exception | None = None
    for _ in range(COMMIT_ATTEMPTS):
        try:
            if is_table(loc):
                dt = open_table(loc, what)
                actions = list[AddAction | RemoveAction](adds)
                dt.create_write_transaction(
                    actions, mode="overwrite", schema=schema, commit_properties=props
                )
            else:
                create_table_with_add_actions(
                    loc.uri,
                    schema,
                    adds,
                    mode="error",
                    configuration=configuration,
                    storage_options=loc.options or None,
                    commit_properties=props,
                )
            return
        except CommitFailedError as e:
            last = e
        except DeltaError as e:
            if "already exists" not in str(e).lower():
                raise translate(e, what) from e
            last = e  # another writer created the table first
        except OSError as e:
            raise translate(e, what) from e
    raise StorageError(
        f"{what}: {COMMIT_ATTEMPTS} other commits landed while this one tried ({last}).",
        title="Too many concurrent writers",
    )


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One version of a table as the log tells it."""

    version: int  # the newest commit that changed data (vacuum and the like do not)
    latest: int  # the log's newest commit
    timestamp_ms: int
    operation: str
    info: dict[str, Any]  # the commit's commitInfo, our metadata included


def commit_meta(info: dict[str, Any], key: str) -> str | None:
    value = info.get(f"{META}.{key}")
    return value if isinstance(value, str) else None


def data_version(dt: DeltaTable, what: str) -> Version:
    """The newest version that changed data, and its commit info. The log's tail is read a
    few entries at a time: usually the newest entry is it (each entry is one read on S3)."""
    latest = dt.version()
    entries: list[dict[str, Any]] = []
    for limit in (3, 16, None):
        try:
            entries = dt.history(limit=limit)
        except (DeltaError, OSError) as e:
            raise translate(e, what) from e
        for h in entries:  # newest first
            if h.get("operation") not in NO_DATA_CHANGE:
                return _version(h, latest)
        if limit is None or len(entries) < limit:
            break
    return _version(entries[0] if entries else {"version": latest}, latest)


def _version(h: dict[str, Any], latest: int) -> Version:
    return Version(
        int(h["version"]), latest, int(h.get("timestamp", 0)), str(h.get("operation", "")), h
    )


def version_info(dt: DeltaTable, version: int, what: str) -> Version:
    """Commit info of one version (from the latest table's history)."""
    latest = dt.version()
    if not 0 <= version <= latest:
        raise TableNotFoundError(f"{what} has no version {version}.", title="No such version")
    try:
        entries = dt.history(limit=latest - version + 1)
    except (DeltaError, OSError) as e:
        raise translate(e, what) from e
    for h in entries:
        if int(h["version"]) == version:
            return Version(version, latest, int(h.get("timestamp", 0)), str(h.get("operation")), h)
    raise TableNotFoundError(
        f"{what} has no version {version} in its log.", title="No such version"
    )


def files_of(
    dt: DeltaTable, layer: Layer, table: str, what: str
) -> tuple[list[str], list[int], list[int | None]]:
    """Storage keys, sizes and row counts of the version's data files."""
    check_readable(dt, what)
    try:
        adds = pa.table(dt.get_add_actions(flatten=True))
    except (DeltaError, OSError) as e:
        raise translate(e, what) from e
    paths = adds.column("path").to_pylist()
    sizes = [int(s) for s in adds.column("size_bytes").to_pylist()]
    rows = (
        adds.column("num_records").to_pylist()
        if "num_records" in adds.column_names
        else [None] * len(paths)
    )
    keys = []
    for p in paths:
        if "://" in p or p.startswith("/"):
            raise LakehouseError(
                f"{what} names a data file outside its folder ({p}); this product reads only "
                "tables whose files are inside them.",
                title="Unsupported Delta table",
            )
        keys.append(f"{layer.value}/{table}/{unquote(p)}")
    return keys, sizes, rows


def check_readable(dt: DeltaTable, what: str) -> None:
    """The product reads a version's files directly: refuse what that would read wrong."""
    features = set(dt.protocol().reader_features or [])
    unsupported = features & {"deletionVectors", "columnMapping", "v2Checkpoint"}
    partitions = dt.metadata().partition_columns
    if unsupported or partitions:
        detail = sorted(unsupported) + (
            [f"partitioned by {', '.join(partitions)}"] if partitions else []
        )
        raise LakehouseError(
            f"{what} uses Delta features this product cannot read yet: {', '.join(detail)}. "
            "Rewrite it unpartitioned without deletion vectors or column mapping.",
            title="Unsupported Delta table",
        )
