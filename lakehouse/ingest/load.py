"""Bronze ingest: one code path for uploads, the landing drop zone and the CLI.

file -> staging (hash, decompress, transcode) -> DuckDB -> Parquet -> validated -> bronze.
Everything before the upload happens in a private staging folder; in storage, the batch's
manifest is written last and a failed upload removes what it wrote.
"""

import dataclasses
import errno
import getpass
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import duckdb

from lakehouse import duck
from lakehouse.errors import IngestError, LakehouseError
from lakehouse.ids import id_time, new_id, now_iso
from lakehouse.ingest.detect import (
    HEAD,
    Compression,
    Format,
    detect_compression,
    detect_encoding,
    detect_format,
)
from lakehouse.ingest.formats import convert
from lakehouse.ingest.original import Keeper, given_hash, stage
from lakehouse.ingest.stream import PassResult, check_zip_content, stream_pass
from lakehouse.layers import check_table_name, dataset_name_from_filename
from lakehouse.settings import Settings
from lakehouse.storage import Storage, leftovers
from lakehouse.storage.staging import folder as staging_folder
from lakehouse.tables import bronze
from lakehouse.tables.bronze import BatchManifest, Mode, SchemaDrift

Progress = Callable[[str, float], None]  # (stage, fraction 0..1)


@dataclass(frozen=True)
class IngestResult:
    manifest: BatchManifest
    elapsed_s: float
    replaced_batches: int

    @property
    def dataset(self) -> str:
        return self.manifest.dataset

    @property
    def rows(self) -> int:
        return self.manifest.rows

    @property
    def drift(self) -> SchemaDrift:
        return self.manifest.drift


def ingest(
    settings: Settings,
    storage: Storage,
    source: Path | str | BinaryIO,
    *,
    dataset: str | None = None,
    mode: Mode = "append",
    filename: str | None = None,
    who: str | None = None,
    progress: Progress | None = None,
    owned: bool = False,
    sha256: str | None = None,
) -> IngestResult:
    """Ingest one file (a path or a binary stream) as a new bronze batch of `dataset`.

    `owned`: the path is the caller's private copy (a download), stable while this runs, so
    it is hashed where it lies instead of copied again.
    `sha256`: with `owned`, the hash the caller computed while receiving the file; it is
    recorded as given and the file is not read again for it (where the file has to be read
    anyway, to decompress or transcode it, a different hash is refused).
    """
    started = time.monotonic()
    if mode not in ("append", "replace"):
        raise IngestError(
            f"Mode must be 'append' or 'replace', not {mode!r}.", title="Invalid mode"
        )
    if sha256 is not None and not (owned and isinstance(source, (str, Path))):
        raise ValueError("sha256= is for an owned path: a user's file may change after hashing")
    if isinstance(source, (str, Path)):
        name = filename or Path(source).name
    else:
        name = filename or str(getattr(source, "name", "") or "upload")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # never a path part of the user's choosing
    try:
        dataset = (
            check_table_name(dataset, "dataset")
            if dataset is not None
            else dataset_name_from_filename(name)
        )
    except LakehouseError as e:
        raise IngestError(e.msg, title=e.title) from e
    batch_id = new_id()
    try:
        with staging_folder(settings, batch_id) as staging:
            manifest, original = _build(
                settings,
                storage,
                source,
                name,
                dataset,
                batch_id,
                mode,
                staging,
                who or _user(),
                progress or _quiet,
                owned,
                sha256,
            )
            if progress:
                progress("publishing", 1.0)
            replaced = _commit(
                settings, storage, manifest, staging / "data.parquet", original, owned
            )
    except (LakehouseError, OSError) as e:
        if _disk_full(e):
            raise IngestError(
                f"The disk holding {settings.state_dir} ran out of space while converting "
                f"{name}; nothing was added to bronze. Free some space, or point "
                "RATATOUILLE_STATE_DIR at a disk with room for about twice the file.",
                title="Disk full",
            ) from e
        raise
    return IngestResult(manifest, time.monotonic() - started, replaced)


def _disk_full(e: BaseException | None) -> bool:
    # DuckDB reports it in its message only; Python's copy as errno.
    seen: set[int] = set()
    while e is not None and id(e) not in seen:  # chains can loop
        seen.add(id(e))
        if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or (
            "No space left on device" in str(e)
        ):
            return True
        e = e.__cause__ or e.__context__
    return False


def _quiet(stage: str, fraction: float) -> None:
    pass


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _build(
    settings: Settings,
    storage: Storage,
    source: Path | str | BinaryIO,
    name: str,
    dataset: str,
    batch_id: str,
    mode: Mode,
    staging: Path,
    who: str,
    progress: Progress,
    owned: bool = False,
    sha256: str | None = None,
) -> tuple[BatchManifest, Path]:
    limit = settings.max_ingest_mb * 2**20
    original, hashed = stage(source, staging, limit, lambda f: progress("receiving", f))
    plain, fmt, compression, encoding, decoded = _plain_text(original, name, staging, limit)
    if sha256 and decoded and decoded.sha256 != sha256:
        raise IngestError(
            f"{name} changed after it was received (its sha256 is not the one recorded then). "
            "Upload it again.",
            title="File changed",
        )
    hashed = hashed or decoded or (given_hash(original, sha256) if sha256 else None)
    # A path's bytes are copied into staging and hashed beside DuckDB's parse, off the GIL;
    # the copy then lands in the lake by rename.
    copy = None if owned else staging / "original"
    copier = Keeper(original, copy, limit) if hashed is None else None
    parquet = staging / "data.parquet"
    con = duck.connect(settings)  # fresh per ingest: a DuckDB internal error poisons an instance
    stop_progress = _poll_progress(con, progress)
    try:
        converted = convert(con, fmt, plain, parquet)
    except IngestError:
        if encoding == "utf-8":  # bad bytes explain a parse error better than DuckDB does
            with open(plain, "rb") as f:
                stream_pass(f, encoding="utf-8", max_bytes=limit)
        raise
    finally:
        stop_progress()
        con.close()
        if copier:  # wait for it on failure too: staging is removed next
            copier.join()
    if copier:
        hashed, original = copier.result(), copy or original
    assert hashed is not None
    if converted.rows == 0:
        raise IngestError(
            f"{name} has no data rows (only a header, or nothing parseable).", title="No data rows"
        )
    before = bronze.current_batches(storage, dataset)  # drift is against the table as read
    ext = fmt + {"gzip": ".gz", "zstd": ".zst", None: ""}[compression]
    prefix = bronze.batch_prefix(dataset, batch_id)
    manifest = BatchManifest(
        dataset=dataset,
        batch_id=batch_id,
        mode=mode,
        source_name=name,
        source_format=fmt,
        compression=compression,
        encoding=encoding,
        source_bytes=hashed.raw_bytes,
        sha256=hashed.sha256,
        rows=converted.rows,
        parquet_bytes=parquet.stat().st_size,
        schema=converted.columns,
        columns=converted.mapping,
        read_options=converted.details,
        ingested_at=now_iso(),
        ingested_by=who,
        data_key=prefix + "data.parquet",
        original_key=prefix + f"original.{ext}",
        drift=bronze.schema_drift(
            bronze.common_schema(before) if before else None, converted.columns
        ),
    )
    return manifest, original


def _plain_text(
    original: Path, name: str, staging: Path, limit: int
) -> tuple[Path, Format, Compression | None, str | None, PassResult | None]:
    """Decompress and transcode to UTF-8 in staging when needed; plain files stay where they are.

    Returns the file DuckDB should read, its format, compression, encoding, and the pass over
    the original bytes if one was made (it carries their sha256).
    """
    with open(original, "rb") as f:
        head = f.read(HEAD)
    if not head:
        raise IngestError(f"{name} is empty (0 bytes).", title="Empty file")
    compression = detect_compression(head)
    plain, hashed = original, None
    if compression:
        plain = staging / "decompressed"
        with open(original, "rb") as f:
            hashed = stream_pass(f, dest=plain, compression=compression, max_bytes=limit)
        with open(plain, "rb") as f:
            head = f.read(HEAD)
        if not head:
            raise IngestError(f"{name} decompresses to nothing.", title="Empty file")
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise IngestError(f"{name} holds only blank lines.", title="No data rows")
    fmt = detect_format(name, head)
    if fmt == "xlsx":
        check_zip_content(plain, limit)
    encoding = detect_encoding(head) if fmt in ("csv", "json") else None
    if encoding and encoding != "utf-8":
        utf8 = staging / "utf8"
        with open(plain, "rb") as f:
            transcoded = stream_pass(f, dest=utf8, encoding=encoding, max_bytes=limit)
        hashed = hashed or transcoded
        plain = utf8
    return plain, fmt, compression, encoding, hashed


def _poll_progress(con: duckdb.DuckDBPyConnection, progress: Progress) -> Callable[[], None]:
    """Report DuckDB's own query progress while the conversion runs."""
    done = threading.Event()

    def run() -> None:
        while not done.wait(0.25):
            pct = con.query_progress()
            if pct >= 0:
                progress("converting", min(pct / 100, 1.0))

    thread = threading.Thread(target=run, name="ingest-progress", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join()

    return stop


def _commit(
    settings: Settings,
    storage: Storage,
    manifest: BatchManifest,
    parquet: Path,
    original: Path,
    owned: bool = False,
) -> int:
    """Upload data and original, then the manifest (the commit point); undo on failure.
    Returns how many earlier batches a replace took out of the table."""
    prefix = bronze.batch_prefix(manifest.dataset, manifest.batch_id)
    leftovers.sweep(settings, storage)
    try:
        storage.put_file(manifest.data_key, parquet, move=True)
        # A spooled upload is ours to move; an owned file (a finished upload) is linked where
        # the lake is local, so a failed commit still leaves it to its owner; a user's file
        # is copied.
        storage.put_file(
            manifest.original_key, original, move=original.parent == parquet.parent, link=owned
        )
        manifest = dataclasses.replace(manifest, committed_id=new_id())
        storage.put_bytes(prefix + bronze.MANIFEST, manifest.to_json())
    except BaseException:
        # Without a manifest the objects are invisible to readers; they still go.
        leftovers.remove(settings, storage, prefix)
        raise
    batches = bronze.all_batches(storage, manifest.dataset)
    _delete_replaced(settings, storage, batches)
    if manifest.mode != "replace":
        return 0
    mine = next(i for i, b in enumerate(batches) if b.batch_id == manifest.batch_id)
    starts = [i for i, b in enumerate(batches[:mine]) if b.mode == "replace"]
    return mine - (starts[-1] if starts else 0)


def _delete_replaced(settings: Settings, storage: Storage, batches: list[BatchManifest]) -> None:
    """Delete the batches before a replace once it has been the table for the grace period:
    readers that listed the batches just before the replace are still reading their files."""
    grace = timedelta(seconds=settings.snapshots_grace_s)
    now = datetime.now(UTC)
    for i in range(len(batches) - 1, 0, -1):
        if batches[i].mode == "replace" and now - id_time(batches[i].order) >= grace:
            for b in batches[:i]:
                storage.delete_prefix(bronze.batch_prefix(b.dataset, b.batch_id))
            return
