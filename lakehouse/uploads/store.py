"""Where an upload's bytes go while they arrive: straight into storage, never whole in memory.

Local lake: appended to `landing/_uploads/<id>.bin`; what is on disk is the offset, so a
restarted service resumes where the last write stopped. S3: an S3 multipart upload of that
key, fed part by part; the bytes of the part still being filled wait in a file under
`state_dir/uploads/` (S3 wants parts of ≥ 5 MB). The offset is the parts done plus that file;
if the file is lost (another machine), the client resends from the last part.
"""

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lakehouse.errors import IngestError, StorageError
from lakehouse.settings import Settings
from lakehouse.storage import Storage, staging
from lakehouse.uploads.records import UploadRecord, data_key, save

if TYPE_CHECKING:
    from lakehouse.storage.s3 import S3Storage

MIN_PART = 64 * 2**20
MAX_PARTS = 9_000  # S3 allows 10,000; a margin for the last, short one
_HEADROOM = 256 * 2**20


class InsufficientStorage(IngestError):
    default_title = "Not enough disk space"


class Appender(Protocol):
    def write(self, data: bytes) -> None: ...


def part_size(length: int) -> int:
    """Parts big enough that even the largest upload fits S3's part count, in whole MB."""
    need = -(-length // MAX_PARTS)
    return max(MIN_PART, -(-need // 2**20) * 2**20)


class ByteStore:
    """The bytes of every upload in one lake."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings, self.storage = settings, storage
        self.s3 = storage.kind == "s3"
        self.tails = settings.state_dir.resolve() / "uploads"

    # -- where ------------------------------------------------------------------------------
    def _local(self, record: UploadRecord) -> Path:
        return Path(self.storage.uri(data_key(record.id)))

    def _tail(self, record: UploadRecord) -> Path:
        return self.tails / f"{record.id}.part"

    def disk(self) -> Path:
        """The disk that must hold the whole file: the local landing folder, or (S3) the
        staging disk the finished file is downloaded to for its ingest."""
        return (
            staging.root(self.settings) if self.s3 else Path(self.storage.uri("landing/x")).parent
        )

    # -- life cycle -------------------------------------------------------------------------
    def check_space(self, length: int, pending: int) -> None:
        """Refuse an upload the disk cannot take, counting what unfinished ones still need."""
        folder = self.disk()
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        need = length + pending + _HEADROOM
        if need > free:
            raise InsufficientStorage(
                f"{folder} has {free / 2**30:.1f} GB free; this file needs "
                f"{length / 2**30:.1f} GB"
                + (f" beside {pending / 2**30:.1f} GB of unfinished uploads" if pending else "")
                + ". Free some space and drop the file again.",
            )

    def start(self, record: UploadRecord) -> None:
        if self.s3:
            record.part_size = part_size(record.length)
            record.multipart_id = self._s3().multipart_start(data_key(record.id))
            self.tails.mkdir(parents=True, exist_ok=True)
            self._tail(record).touch()
        else:
            path = self._local(record)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))

    def offset(self, record: UploadRecord) -> int:
        if self.s3:
            done = len(record.parts) * record.part_size
            try:
                return done + self._tail(record).stat().st_size
            except FileNotFoundError:
                return done
        try:
            return self._local(record).stat().st_size
        except FileNotFoundError as e:
            raise StorageError(f"The bytes of upload {record.id} are gone.") from e

    @contextlib.contextmanager
    def appender(self, record: UploadRecord) -> Iterator[Appender]:
        """Append at the current offset; what was written stays written if the caller stops."""
        if self.s3:
            with _S3Appender(self, record) as a:
                yield a
            return
        fd = os.open(self._local(record), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            yield _FdAppender(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def finished_file(self, record: UploadRecord) -> Iterator[Path]:
        """The complete file as a local path for its ingest (S3: completed, then downloaded)."""
        if not self.s3:
            yield self._local(record)
            return
        s3 = self._s3()
        key = data_key(record.id)
        if record.multipart_id:
            tail = self._tail(record)
            if tail.exists() and (tail.stat().st_size or not record.parts):
                record.parts.append(
                    s3.multipart_part(key, record.multipart_id, len(record.parts) + 1, tail)
                )
            s3.multipart_complete(key, record.multipart_id, record.parts)
            record.multipart_id = None
            save(self.storage, record)
            tail.unlink(missing_ok=True)
        with staging.folder(self.settings, f"upload-{record.id}") as work:
            path = work / "file"
            self.storage.download(key, path)
            yield path

    def discard(self, record: UploadRecord) -> None:
        """Delete the bytes, wherever they are."""
        if self.s3:
            if record.multipart_id:
                self._s3().multipart_abort(data_key(record.id), record.multipart_id)
            self._tail(record).unlink(missing_ok=True)
        self.storage.delete([data_key(record.id)])

    def _s3(self) -> "S3Storage":
        from lakehouse.storage.s3 import S3Storage

        assert isinstance(self.storage, S3Storage)
        return self.storage


class _FdAppender:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]


class _S3Appender:
    """Fills the tail file up to a part's size, then sends it as the next part."""

    def __init__(self, store: ByteStore, record: UploadRecord) -> None:
        self.store, self.record = store, record
        self.path = store._tail(record)
        self.f = open(self.path, "ab")  # noqa: SIM115 - closed in __exit__
        self.filled = self.f.tell()

    def __enter__(self) -> "_S3Appender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        size = self.record.part_size
        while view:
            take = min(len(view), size - self.filled)
            self.f.write(view[:take])
            self.filled += take
            view = view[take:]
            if self.filled == size:
                self._send_part()

    def _send_part(self) -> None:
        self.f.flush()
        r, s3 = self.record, self.store._s3()
        assert r.multipart_id is not None
        r.parts.append(
            s3.multipart_part(data_key(r.id), r.multipart_id, len(r.parts) + 1, self.path)
        )
        save(self.store.storage, r)  # the part counts once the record says so
        self.f.truncate(0)
        self.f.seek(0)
        self.filled = 0
