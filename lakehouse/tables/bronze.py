"""Bronze layout: `bronze/<dataset>/batch=<id>/{data.parquet, original.<ext>, _manifest.json}`.

A batch exists once its manifest does: the manifest is written last, so readers never see a
half-written batch. A `replace` batch hides every earlier one; later `append`s add to it.
"""

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from lakehouse.duck import parquet_scan
from lakehouse.errors import TableNotFoundError
from lakehouse.layers import Layer, quote_ident
from lakehouse.storage import ObjectNotFound, Storage

Mode = Literal["append", "replace"]
MANIFEST = "_manifest.json"


@dataclass(frozen=True)
class SchemaDrift:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    retyped: list[tuple[str, str, str]] = field(default_factory=list)  # (column, before, after)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.retyped)

    def describe(self) -> str:
        if not self.changed:
            return "no schema change"
        parts = []
        if self.added:
            parts.append("added " + ", ".join(self.added))
        if self.removed:
            parts.append("removed " + ", ".join(self.removed))
        if self.retyped:
            parts.append("retyped " + ", ".join(f"{c} {a}→{b}" for c, a, b in self.retyped))
        return "; ".join(parts)


def schema_drift(before: list[tuple[str, str]] | None, after: list[tuple[str, str]]) -> SchemaDrift:
    if before is None:
        return SchemaDrift()
    old, new = dict(before), dict(after)
    return SchemaDrift(
        added=[c for c in new if c not in old],
        removed=[c for c in old if c not in new],
        retyped=[(c, old[c], new[c]) for c in new if c in old and old[c] != new[c]],
    )


@dataclass(frozen=True)
class BatchManifest:
    dataset: str
    batch_id: str
    mode: Mode
    source_name: str
    source_format: str
    compression: str | None
    encoding: str | None
    source_bytes: int
    sha256: str
    rows: int
    parquet_bytes: int
    schema: list[tuple[str, str]]
    columns: list[tuple[str, str]]  # (name in the file, name in the lake)
    read_options: dict[str, str]
    ingested_at: str
    ingested_by: str
    data_key: str
    original_key: str
    drift: SchemaDrift
    format_version: int = 1
    # Taken just before the manifest is written: batches count in commit order, so an append
    # that started before a replace but committed after it is part of the new table.
    committed_id: str | None = None

    @property
    def order(self) -> str:
        return self.committed_id or self.batch_id

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "BatchManifest":
        raw: dict[str, Any] = json.loads(data)
        raw["schema"] = [tuple(c) for c in raw["schema"]]
        raw["columns"] = [tuple(c) for c in raw["columns"]]
        d = raw.pop("drift")
        raw["drift"] = SchemaDrift(d["added"], d["removed"], [tuple(r) for r in d["retyped"]])
        return cls(**raw)


def batch_prefix(dataset: str, batch_id: str) -> str:
    return f"{Layer.BRONZE.value}/{dataset}/batch={batch_id}/"


# A manifest never changes once written (a batch is replaced by new batches, never edited),
# so each is read once per process. Keyed by URI: tests run many lakes in one process.
_MANIFESTS: dict[str, "BatchManifest"] = {}


def all_batches(storage: Storage, dataset: str) -> list[BatchManifest]:
    """Every committed batch of a dataset, oldest first (batches without manifest are ignored)."""
    out = []
    for folder in storage.list_dirs(f"{Layer.BRONZE.value}/{dataset}/"):
        if not folder.startswith("batch="):
            continue
        key = batch_prefix(dataset, folder.removeprefix("batch=")) + MANIFEST
        if (manifest := _MANIFESTS.get(storage.uri(key))) is None:
            try:
                manifest = BatchManifest.from_json(storage.get_bytes(key))
            except ObjectNotFound:  # being written, or left by a crash: not part of the dataset
                continue
            _MANIFESTS[storage.uri(key)] = manifest
        out.append(manifest)
    return sorted(out, key=lambda m: m.order)


def current_batches(storage: Storage, dataset: str) -> list[BatchManifest]:
    """The batches readers see: from the last `replace` on."""
    batches = all_batches(storage, dataset)
    starts = [i for i, b in enumerate(batches) if b.mode == "replace"]
    return batches[starts[-1] :] if starts else batches


def require_batches(storage: Storage, dataset: str) -> list[BatchManifest]:
    batches = current_batches(storage, dataset)
    if not batches:
        raise TableNotFoundError(f"There is no bronze dataset {dataset!r}.")
    return batches


_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_NUMBERS = _INTEGERS | {"FLOAT", "DOUBLE"}


def _common_type(types: set[str]) -> str:
    """One type for a column whose batches disagree: widen numbers, else keep the text."""
    if len(types) == 1:
        return next(iter(types))
    if types <= _INTEGERS:
        return "BIGINT"
    if types <= _NUMBERS:
        return "DOUBLE"
    return "VARCHAR"


def common_schema(batches: list[BatchManifest]) -> list[tuple[str, str]]:
    """The dataset's columns in order of first appearance, each with a type every batch fits."""
    types: dict[str, set[str]] = {}
    for b in batches:
        for name, typ in b.schema:
            types.setdefault(name, set()).add(typ)
    return [(name, _common_type(t)) for name, t in types.items()]


def scan_sql(batches: list[BatchManifest], uri: Callable[[str], str]) -> str:
    """A relation over all batches with the common schema (batches with equal schemas share a
    scan; columns a batch lacks are NULL, types it disagrees on are cast)."""
    schema = common_schema(batches)
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for b in batches:
        groups.setdefault(tuple(b.schema), []).append(uri(b.data_key))
    selects = []
    for group_schema, uris in groups.items():
        have = dict(group_schema)
        cols = ", ".join(
            f"{quote_ident(n)}"
            if have.get(n) == t
            else f"CAST({quote_ident(n) if n in have else 'NULL'} AS {t}) AS {quote_ident(n)}"
            for n, t in schema
        )
        selects.append(f"SELECT {cols} FROM {parquet_scan(uris)}")
    return "(" + " UNION ALL ".join(selects) + ")"
