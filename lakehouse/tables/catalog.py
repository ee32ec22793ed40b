"""What is in the lake, from bronze manifests and Delta logs only (no data is scanned)."""

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lakehouse import duck
from lakehouse.errors import LakehouseError, TableNotFoundError
from lakehouse.layers import TABLE_LAYERS, Layer, check_table_name
from lakehouse.storage import Storage
from lakehouse.tables import bronze, snapshots


@dataclass(frozen=True)
class TableInfo:
    layer: str
    name: str
    columns: list[tuple[str, str]]
    rows: int
    size_bytes: int
    snapshot_id: str  # bronze: the newest batch
    updated_at: str
    run_id: str | None
    files: list[str]  # storage keys of the data
    scan_sql: str  # a DuckDB relation that reads the table
    batches: int = 1

    @property
    def qualified_name(self) -> str:
        return f"{self.layer}.{self.name}"


def bronze_table(storage: Storage, dataset: str) -> TableInfo:
    batches = bronze.require_batches(storage, dataset)
    last = batches[-1]
    return TableInfo(
        layer=Layer.BRONZE.value,
        name=dataset,
        columns=bronze.common_schema(batches),
        rows=sum(b.rows for b in batches),
        size_bytes=sum(b.parquet_bytes for b in batches),
        snapshot_id=last.batch_id,
        updated_at=last.ingested_at,
        run_id=None,
        files=[b.data_key for b in batches],
        scan_sql=bronze.scan_sql(batches, storage.uri),
        batches=len(batches),
    )


def snapshot_table(storage: Storage, layer: Layer, table: str) -> TableInfo:
    s = snapshots.current(storage, layer, table)
    return TableInfo(
        layer=layer.value,
        name=table,
        columns=s.schema,
        rows=s.rows,
        size_bytes=s.size_bytes,
        snapshot_id=s.snapshot_id,
        updated_at=s.created_at,
        run_id=s.run_id,
        files=s.files,
        scan_sql=duck.parquet_scan([storage.uri(k) for k in s.files]),
    )


def table_info(storage: Storage, layer: Layer | str, name: str) -> TableInfo:
    layer = Layer(layer)
    if layer == Layer.BRONZE:
        return bronze_table(storage, name)
    return snapshot_table(storage, layer, name)


def list_tables(storage: Storage, layer: Layer | str | None = None) -> list[TableInfo]:
    """Tables of one layer or all table layers, by layer then name.

    Reads go out side by side: on S3 each is a round trip, and the query engine lists the
    catalog before every query so that views follow new snapshots.
    """
    layers = [Layer(layer)] if layer else list(TABLE_LAYERS)
    pool = _pool()
    names = pool.map(lambda lay: [(lay, n) for n in storage.list_dirs(f"{lay.value}/")], layers)
    found = pool.map(lambda ln: _info_or_none(storage, *ln), [x for ns in names for x in ns])
    return [t for t in found if t is not None]


def find_tables(
    storage: Storage, wanted: list[tuple[str, str]]
) -> dict[tuple[str, str], TableInfo | None]:
    """(layer, name) → its TableInfo, or None where there is no such table; read side by side."""

    def one(key: tuple[str, str]) -> TableInfo | None:
        try:
            return _info_or_none(storage, Layer(key[0]), check_table_name(key[1]))
        except LakehouseError:  # not a valid layer or name, so not a table
            return None

    return dict(zip(wanted, _pool().map(one, wanted), strict=True))


def _info_or_none(storage: Storage, layer: Layer, name: str) -> TableInfo | None:
    try:
        return table_info(storage, layer, name)
    except TableNotFoundError:  # a folder with nothing committed yet
        return None


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(8, thread_name_prefix="catalog")
