"""What happens around the bytes: creating uploads, finishing them, ingesting each finished
file into bronze (with progress in its record), starting its pipeline run, and sweeping
uploads nobody finished."""

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from lakehouse.errors import LakehouseError
from lakehouse.ids import now_iso
from lakehouse.ingest.landing import reject
from lakehouse.ingest.load import ingest
from lakehouse.settings import Settings
from lakehouse.storage import Storage, open_storage
from lakehouse.uploads.records import (
    UploadRecord,
    data_key,
    expired,
    load,
    record_key,
    records,
    save,
)
from lakehouse.uploads.store import Appender, ByteStore

log = logging.getLogger(__name__)
# Starts the dataset's silver and gold at once; None leaves it to the pipeline's sensors.
Launch = Callable[[Settings, str], str]
_PROGRESS_EVERY_S = 0.5
SWEEP_EVERY_S = 600.0


class UploadService:
    def __init__(
        self,
        settings: Settings,
        storage: Storage | None = None,
        *,
        launch: Launch | None = None,
        ingest_workers: int = 2,
    ) -> None:
        self.settings = settings
        self.storage = storage or open_storage(settings)
        self.store = ByteStore(settings, self.storage)
        self.launch = launch
        self.pool = ThreadPoolExecutor(ingest_workers, thread_name_prefix="upload-ingest")
        self._creating = threading.Lock()  # one space check at a time
        # sha256 of each upload's bytes so far, hashed as they arrive: the ingest then needs
        # no second read. Lost on a restart; that upload is hashed at its ingest instead.
        self._hashes: dict[str, _Hashing] = {}

    # -- uploads ----------------------------------------------------------------------------
    def create(self, length: int, metadata: dict[str, str], user: str | None) -> UploadRecord:
        record = UploadRecord.create(self.settings, length, metadata, user)
        with self._creating:
            pending = sum(
                r.length - self.offset(r) for r in records(self.storage) if r.state == "receiving"
            )
            self.store.check_space(length, pending)
            self.store.start(record)
            save(self.storage, record)
        log.info(
            "upload %s: %s (%d bytes) for %s", record.id, record.filename, length, record.dataset
        )
        if length == 0:
            self.complete(record)
        return record

    def get(self, upload_id: str) -> UploadRecord:
        return load(self.storage, upload_id)

    def offset(self, record: UploadRecord) -> int:
        if record.state != "receiving":
            return record.length
        try:
            return self.store.offset(record)
        except LakehouseError:
            return 0

    @contextlib.contextmanager
    def appender(self, record: UploadRecord, offset: int) -> Iterator[Appender]:
        """Append at `offset` (the current one), hashing what is written."""
        hashing = self._hashes.get(record.id)
        if hashing is None and offset == 0:
            hashing = self._hashes[record.id] = _Hashing()
        if hashing is not None and hashing.offset != offset:
            self._hashes.pop(record.id, None)  # bytes went by unseen (another process)
            hashing = None
        with self.store.appender(record) as out:
            yield out if hashing is None else hashing.wrap(out)

    def _received_hash(self, record: UploadRecord) -> str | None:
        hashing = self._hashes.pop(record.id, None)
        return hashing.sha.hexdigest() if hashing and hashing.offset == record.length else None

    def touched(self, record: UploadRecord) -> None:
        record.touched_at = now_iso()
        save(self.storage, record)

    def complete(self, record: UploadRecord) -> None:
        """Every byte is in: ingest it (in the background) and say so in the record."""
        record.state, record.stage, record.touched_at = "ingesting", "queued", now_iso()
        save(self.storage, record)
        self.pool.submit(self._ingest, record)

    def terminate(self, record: UploadRecord) -> None:
        self._hashes.pop(record.id, None)
        self.store.discard(record)
        self.storage.delete([record_key(record.id)])

    # -- ingest -----------------------------------------------------------------------------
    def _ingest(self, record: UploadRecord) -> None:
        try:
            self._ingest_one(record)
        except Exception:  # a bug here must not kill the worker; the record says what failed
            log.exception("upload %s: ingest failed unexpectedly", record.id)
            record.state, record.error_title = "rejected", "Unexpected error"
            record.error_message = "The upload service failed while ingesting; see its log."
            record.finished_at = now_iso()
            save(self.storage, record)

    def _ingest_one(self, record: UploadRecord) -> None:
        last = [0.0]

        def progress(stage: str, fraction: float) -> None:
            if time.monotonic() - last[0] >= _PROGRESS_EVERY_S:
                last[0] = time.monotonic()
                record.stage, record.fraction = stage, fraction
                save(self.storage, record)

        received = self._received_hash(record)
        try:
            with self.store.finished_file(record) as path:
                result = ingest(
                    self.settings,
                    self.storage,
                    path,
                    dataset=record.dataset,
                    mode=record.mode,
                    filename=record.filename,
                    who=record.user,
                    progress=progress,
                    owned=True,
                    sha256=received,
                )
        except LakehouseError as e:
            record.state, record.error_title, record.error_message = "rejected", e.title, e.msg
            record.rejected_to = self._keep_rejected(record, e)
            record.finished_at = now_iso()
            save(self.storage, record)
            log.info("upload %s rejected: %s: %s", record.id, e.title, e.msg)
            return
        m = result.manifest
        record.state, record.stage, record.fraction = "ingested", "done", 1.0
        record.batch_id, record.rows, record.elapsed_s = m.batch_id, m.rows, result.elapsed_s
        record.replaced_batches, record.sha256 = result.replaced_batches, m.sha256
        record.finished_at = now_iso()
        save(self.storage, record)
        self.store.discard(record)  # the batch keeps the original now
        log.info("upload %s → bronze.%s batch %s", record.id, record.dataset, m.batch_id)
        self._launch(record)

    def _keep_rejected(self, record: UploadRecord, error: LakehouseError) -> str | None:
        """A rejected file is kept in `landing/_rejected/` under its name, with its report."""
        try:
            return reject(self.storage, data_key(record.id), error, name=record.filename)
        except LakehouseError:
            log.exception("upload %s: could not keep the rejected file", record.id)
            return None

    def _launch(self, record: UploadRecord) -> None:
        if self.launch is None:
            return
        try:
            record.run_id = self.launch(self.settings, record.dataset)
        except LakehouseError as e:  # the sensors pick the batch up instead
            record.run_error = f"{e.title}: {e.msg}"
            log.warning("upload %s: no run started (%s); the sensors will", record.id, e.msg)
        save(self.storage, record)

    # -- upkeep -----------------------------------------------------------------------------
    def resume(self) -> int:
        """After a restart: ingest what was complete but not yet ingested."""
        waiting = [r for r in records(self.storage) if r.state == "ingesting"]
        for record in waiting:
            self.pool.submit(self._ingest, record)
        return len(waiting)

    def sweep(self, now: datetime | None = None) -> int:
        """Delete unfinished uploads untouched for `upload_expiry_hours`, and records of
        finished ones as old; return how many went."""
        now = now or datetime.now(UTC)
        gone = 0
        for record in records(self.storage):
            if record.state == "receiving" and expired(self.settings, record, now):
                self.terminate(record)
            elif (
                record.done
                and record.finished_at
                and now - datetime.fromisoformat(record.finished_at)
                >= timedelta(hours=self.settings.upload_expiry_hours)
            ):
                self.storage.delete([record_key(record.id)])
            else:
                continue
            gone += 1
            log.info("upload %s (%s) expired and was deleted", record.id, record.filename)
        return gone

    def run_sweeper(self, stop: threading.Event, every_s: float = SWEEP_EVERY_S) -> None:
        while not stop.is_set():
            try:
                self.sweep()
            except LakehouseError:
                log.exception("sweeping expired uploads failed; trying again later")
            stop.wait(every_s)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)


class _Hashing:
    def __init__(self) -> None:
        self.sha, self.offset = hashlib.sha256(), 0

    def wrap(self, out: Appender) -> Appender:
        hashing = self

        class _Out:
            def write(self, data: bytes) -> None:
                out.write(data)
                hashing.sha.update(data)  # releases the GIL for big buffers
                hashing.offset += len(data)

        return _Out()
