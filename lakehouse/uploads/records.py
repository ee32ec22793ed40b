"""What the lake knows of each resumable upload: one JSON record per upload beside its bytes.

Records live in storage (`landing/_uploads/<id>.json`; not `.uploads`, which SeaweedFS keeps
for itself), so the upload service that receives the bytes and the app that shows the outcome
(separate processes, or containers sharing S3) read the same state. The record is rewritten
whole on each change; readers see the old or the new one, never a mix.
"""

import json
import re
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Literal

from lakehouse.errors import IngestError, LakehouseError
from lakehouse.ids import now_iso
from lakehouse.ingest.landing import PREFIX, UPLOADS
from lakehouse.layers import check_table_name
from lakehouse.settings import Settings
from lakehouse.storage import Storage
from lakehouse.storage.protocol import ObjectNotFound
from lakehouse.tables.bronze import Mode

FOLDER = f"{PREFIX}{UPLOADS}/"  # skipped by the landing drop zone, like _rejected/
State = Literal["receiving", "ingesting", "ingested", "rejected"]
_ID = re.compile(r"[0-9a-f]{32}")
_NAME_MAX = 255


class UploadNotFound(LakehouseError):
    default_title = "Upload not found"


def new_upload_id() -> str:
    return secrets.token_hex(16)


def check_upload_id(upload_id: str) -> str:
    """An id is ours only if it has our shape: nothing else ever reaches a storage key."""
    if not _ID.fullmatch(upload_id):
        raise UploadNotFound(f"No upload {upload_id[:40]!r}.")
    return upload_id


def data_key(upload_id: str) -> str:
    return f"{FOLDER}{check_upload_id(upload_id)}.bin"


def record_key(upload_id: str) -> str:
    return f"{FOLDER}{check_upload_id(upload_id)}.json"


def check_filename(name: str) -> str:
    """A file name as the user's browser gave it: kept for display and the batch's original,
    never used as a path, so only names that could not be one are refused."""
    bad = not name or name in (".", "..") or len(name.encode()) > _NAME_MAX
    if bad or any(c in name for c in "/\\\x00") or any(ord(c) < 32 for c in name):
        raise IngestError(
            "The file name must be a plain name (no folders, no control characters, at most "
            f"{_NAME_MAX} bytes), not {name[:80]!r}.",
            title="Invalid file name",
        )
    return name


def check_mode(mode: str) -> Mode:
    if mode not in ("append", "replace"):
        raise IngestError(
            f"Mode must be append or replace, not {mode[:40]!r}.", title="Invalid mode"
        )
    return mode  # type: ignore[return-value]


@dataclass
class UploadRecord:
    """One upload, from its creation to its outcome."""

    id: str
    length: int
    filename: str
    dataset: str
    mode: Mode
    filetype: str | None = None
    user: str | None = None
    created_at: str = field(default_factory=now_iso)
    touched_at: str = field(default_factory=now_iso)
    state: State = "receiving"
    # S3 only: the multipart upload the bytes go to, its part size and the parts done.
    multipart_id: str | None = None
    part_size: int = 0
    parts: list[str] = field(default_factory=list)  # ETags, part n at index n - 1
    # The ingest, once every byte is in.
    stage: str | None = None
    fraction: float = 0.0
    batch_id: str | None = None
    rows: int | None = None
    elapsed_s: float | None = None
    replaced_batches: int = 0
    sha256: str | None = None
    error_title: str | None = None
    error_message: str | None = None
    rejected_to: str | None = None
    run_id: str | None = None
    run_error: str | None = None
    finished_at: str | None = None

    @classmethod
    def create(
        cls, settings: Settings, length: int, metadata: dict[str, str], user: str | None
    ) -> "UploadRecord":
        """A new upload from tus `Upload-Metadata`; refuses what could not be ingested."""
        if length > settings.max_upload_mb * 2**20:
            raise UploadTooLarge(
                f"The file is {length / 2**30:.1f} GB; uploads stop at "
                f"{settings.max_upload_mb:,} MB (RATATOUILLE_MAX_UPLOAD_MB).",
            )
        filename = check_filename(metadata.get("filename") or metadata.get("name") or "")
        try:
            dataset = check_table_name(metadata.get("dataset", ""), "dataset")
        except LakehouseError as e:
            raise IngestError(e.msg, title=e.title) from e
        mode = check_mode(metadata.get("mode") or "append")
        return cls(new_upload_id(), length, filename, dataset, mode, metadata.get("filetype"), user)

    def expires(self, settings: Settings) -> datetime:
        touched = datetime.fromisoformat(self.touched_at)
        return touched + timedelta(hours=settings.upload_expiry_hours)

    @property
    def done(self) -> bool:
        return self.state in ("ingested", "rejected")

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "UploadRecord":
        raw = json.loads(data)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


UploadStatus = UploadRecord  # what the app reads of an upload: its record, as it stands


class UploadTooLarge(IngestError):
    default_title = "File too large"


def save(storage: Storage, record: UploadRecord) -> None:
    storage.put_bytes(record_key(record.id), record.to_json())


def load(storage: Storage, upload_id: str) -> UploadRecord:
    try:
        return UploadRecord.from_json(storage.get_bytes(record_key(upload_id)))
    except ObjectNotFound as e:
        raise UploadNotFound(
            f"No upload {upload_id!r}: it finished long ago, expired or was cancelled."
        ) from e
    except (ValueError, TypeError) as e:
        raise UploadNotFound(f"Upload {upload_id!r} has an unreadable record ({e}).") from e


def records(storage: Storage) -> list[UploadRecord]:
    """Every upload the lake holds a record of, oldest first; unreadable ones are skipped."""
    out = []
    for obj in storage.list_objects(FOLDER):
        name = obj.key.removeprefix(FOLDER)
        if name.endswith(".json") and _ID.fullmatch(name.removesuffix(".json")):
            try:
                out.append(load(storage, name.removesuffix(".json")))
            except LakehouseError:
                continue
    return sorted(out, key=lambda r: r.created_at)


def expired(settings: Settings, record: UploadRecord, now: datetime | None = None) -> bool:
    return (now or datetime.now(UTC)) >= record.expires(settings)


def upload_outcome(
    settings: Settings, upload_id: str, storage: Storage | None = None
) -> UploadRecord:
    """Where an upload stands (receiving, ingesting with progress, ingested, rejected), for
    the page that started it; raises UploadNotFound once it is gone."""
    from lakehouse.storage import open_storage

    return load(storage or open_storage(settings), check_upload_id(upload_id))
