"""The landing drop zone: files too big for a browser, copied in with any S3 client or `cp`.

`landing/<file>` becomes a dataset named after the file; `landing/<dataset>/<file>` appends
to that dataset. A file is ingested through the same path as uploads and the CLI; on success
it leaves landing (its bytes are kept in bronze as the batch's original), on failure it moves
to `landing/_rejected/` with `<file>.error.json` beside it. Nothing is deleted unread.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from lakehouse import staging
from lakehouse.errors import IngestError, LakehouseError
from lakehouse.ids import new_id, now_iso
from lakehouse.ingest import IngestResult, ingest
from lakehouse.layers import Layer, check_table_name, dataset_name_from_filename, safe_name
from lakehouse.settings import Settings
from lakehouse.storage import ObjectInfo, Storage

PREFIX = f"{Layer.LANDING.value}/"
REJECTED = "_rejected"
# Names copy tools give files while they are still being written.
_PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".filepart", "~")


@dataclass(frozen=True)
class LandingFile:
    key: str
    size: int
    modified: datetime

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def dataset(self) -> str | None:
        """The folder's name for `landing/<dataset>/<file>`; None for files at the top."""
        parts = PurePosixPath(self.key).parts
        return parts[1] if len(parts) == 3 else None

    @property
    def fingerprint(self) -> str:
        """Changes whenever the file does: a replaced file is a new drop."""
        return f"{self.key}@{self.size}@{self.modified.isoformat()}"


def _candidate(obj: ObjectInfo) -> bool:
    parts = PurePosixPath(obj.key).parts[1:]
    if not parts or parts[0] == REJECTED or len(parts) > 2:
        return False
    name = parts[-1]
    return not name.startswith((".", "~$")) and not name.lower().endswith(_PARTIAL_SUFFIXES)


def pending(
    storage: Storage, settle_s: float, now: datetime | None = None
) -> tuple[list[LandingFile], list[LandingFile]]:
    """(files ready to ingest, files still settling), oldest first.

    An S3 object is complete once it is listed; a local file is ready once it has not
    changed for `settle_s` seconds (a copy in progress keeps touching it).
    """
    now = now or datetime.now(UTC)
    ready: list[LandingFile] = []
    settling: list[LandingFile] = []
    for obj in storage.list_objects(PREFIX):
        if not _candidate(obj):
            continue
        f = LandingFile(obj.key, obj.size, obj.modified)
        young = storage.kind == "local" and now - obj.modified < timedelta(seconds=settle_s)
        (settling if young else ready).append(f)
    return sorted(ready, key=lambda f: f.modified), settling


def ingest_file(
    settings: Settings,
    storage: Storage,
    key: str,
    run_id: str | None = None,
    *,
    dataset: str | None = None,
) -> IngestResult:
    """Ingest `landing/...` into bronze; remove it on success, reject it on failure.

    `dataset`, when given, must be the one the file's place names (see `dataset_for`).
    """
    obj = LandingFile(key, 0, datetime.now(UTC))
    if not _candidate(ObjectInfo(key, 0, obj.modified)):
        raise IngestError(f"{key!r} is not a file in the landing zone.", title="Not a landing file")
    if dataset is not None and dataset != dataset_for(obj):
        raise IngestError(
            f"{key!r} belongs to dataset {dataset_for(obj)!r}, not {dataset!r}.",
            title="Wrong dataset",
        )
    dataset = obj.dataset
    try:
        if dataset is not None:
            check_table_name(dataset, "dataset")
        with staging.folder(settings, f"landing-{new_id()}") as work:
            if storage.kind == "local":
                source = Path(storage.uri(key))
            else:
                source = work / obj.name
                storage.download(key, source)
            result = ingest(
                settings,
                storage,
                source,
                dataset=dataset,
                filename=obj.name,
                who="landing",
                owned=storage.kind != "local",  # our download: no second copy
            )
    except LakehouseError as e:
        if storage.exists(key):
            reject(storage, key, e, run_id)
        raise
    storage.delete([key])
    return result


def dataset_for(f: LandingFile) -> str:
    """The dataset a landing file goes to: its folder's name, else one from its file name.

    A folder name that is not a valid dataset name comes back made safe; ingest refuses the
    file then (a folder name is the user's explicit choice, so it is not silently changed).
    """
    return safe_name(f.dataset, "dataset") if f.dataset else dataset_name_from_filename(f.name)


def reject(storage: Storage, key: str, error: LakehouseError, run_id: str | None = None) -> str:
    """Move a file to `landing/_rejected/` with an error report beside it; the new key."""
    rel = key.removeprefix(PREFIX)
    dest = f"{PREFIX}{REJECTED}/{rel}"
    if storage.exists(dest):  # the same name was rejected before: keep both
        stem, dot, ext = rel.rpartition(".")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        dest = f"{PREFIX}{REJECTED}/{stem or ext}-{stamp}{dot}{ext if stem else ''}"
    report = {
        "file": rel,
        "title": error.title,
        "message": error.msg,
        "rejected_at": now_iso(),
        "run_id": run_id,
        "what_to_do": "Fix the file and copy it into landing again; this copy is kept as is.",
    }
    storage.put_bytes(dest + ".error.json", json.dumps(report, indent=1).encode())
    storage.move(key, dest)
    return dest


def rejected(storage: Storage) -> list[dict[str, object]]:
    """Error reports of rejected files, newest first."""
    out = []
    for obj in storage.list_objects(f"{PREFIX}{REJECTED}/"):
        if obj.key.endswith(".error.json"):
            try:
                out.append(json.loads(storage.get_bytes(obj.key)))
            except (LakehouseError, ValueError):
                continue
    return sorted(out, key=lambda r: str(r.get("rejected_at")), reverse=True)
