"""The landing drop zone: files too big for a browser, copied in with any S3 client or `cp`.

`landing/<file>` becomes a dataset named after the file; `landing/<dataset>/<file>` appends
to that dataset. A file is ingested through the same path as uploads and the CLI; on success
it leaves landing (its bytes are kept in bronze as the batch's original), on failure it moves
to `landing/_rejected/` with `<file>.error.json` beside it. Nothing is deleted unread.

Whoever can write into landing is not trusted. In a local landing folder only regular files
with a single name are taken: symbolic links, FIFOs, sockets, devices and directories are
refused without being opened or read, and so are hard links (a second name of a file that
may live outside the lake; copy the file instead). The file is opened without following
links and checked on the open descriptor, which is what gets ingested, so swapping a link in
after the check reads nothing. Error reports therefore only ever quote bytes of files that
were in landing.
"""

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from lakehouse.errors import IngestError, LakehouseError
from lakehouse.ids import new_id, now_iso
from lakehouse.ingest.load import IngestResult, ingest
from lakehouse.layers import Layer, check_table_name, dataset_name_from_filename, safe_name
from lakehouse.settings import Settings
from lakehouse.storage import ObjectInfo, Storage, staging

PREFIX = f"{Layer.LANDING.value}/"
REJECTED = "_rejected"
UPLOADS = "_uploads"  # resumable uploads in progress (lakehouse.uploads)
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
    def destination(self) -> str:
        """The dataset this file is ingested into (see `dataset_for`)."""
        return dataset_for(self)

    @property
    def fingerprint(self) -> str:
        """Changes whenever the file does: a replaced file is a new drop."""
        return f"{self.key}@{self.size}@{self.modified.isoformat()}"


def _candidate(obj: ObjectInfo) -> bool:
    parts = PurePosixPath(obj.key).parts[1:]
    if not parts or parts[0] in (REJECTED, UPLOADS) or parts[0].startswith(".") or len(parts) > 2:
        return False
    if any(p in (".", "..") or "\\" in p or "\x00" in p for p in obj.key.split("/")[1:]):
        return False  # a key that could name something outside landing
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
    if dataset is not None and dataset != obj.destination:
        raise IngestError(
            f"{key!r} belongs to dataset {obj.destination!r}, not {dataset!r}.",
            title="Wrong dataset",
        )
    dataset = obj.dataset
    try:
        if dataset is not None:
            check_table_name(dataset, "dataset")
        if storage.kind == "local":
            with _LocalDrop.open(storage, key) as drop:
                result = ingest(
                    settings,
                    storage,
                    drop.source(),
                    dataset=dataset,
                    filename=obj.name,
                    who="landing",
                )
                drop.remove()
            return result
        with staging.folder(settings, f"landing-{new_id()}") as work:
            source = work / obj.name
            storage.download(key, source)
            result = ingest(
                settings,
                storage,
                source,
                dataset=dataset,
                filename=obj.name,
                who="landing",
                owned=True,  # our download: no second copy
            )
    except LakehouseError as e:
        if _present(storage, key):
            reject(storage, key, e, run_id)
        raise
    storage.delete([key])
    return result


class _LocalDrop:
    """A local landing file opened without following links, checked on its descriptor."""

    def __init__(self, dir_fd: int, name: str, fd: int, st: os.stat_result) -> None:
        self.dir_fd, self.name, self.fd, self.st = dir_fd, name, fd, st
        self.stream: BinaryIO | None = None

    @classmethod
    @contextlib.contextmanager
    def open(cls, storage: Storage, key: str) -> Iterator["_LocalDrop"]:
        parts = PurePosixPath(key).parts[1:]
        base = Path(storage.uri(key)).parents[len(parts) - 1]
        dir_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fd = -1
        try:
            for part in parts[:-1]:  # a linked dataset folder is refused like a linked file
                try:
                    sub = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
                except OSError as e:
                    raise _not_regular(key, f"its folder {part!r} is not a plain folder") from e
                os.close(dir_fd)
                dir_fd = sub
            name = parts[-1]
            try:
                seen = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError as e:
                raise IngestError(f"{key!r} is no longer in landing.", title="File gone") from e
            _check_regular(key, seen)  # before opening: a device or FIFO is never opened
            try:
                fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
            except OSError as e:  # ELOOP: a link was swapped in after the check
                raise _not_regular(key, "it was replaced while being read") from e
            st = os.fstat(fd)
            _check_regular(key, st)
            if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
                raise _not_regular(key, "it was replaced while being read")
            drop = cls(dir_fd, name, fd, st)
            try:
                yield drop
            finally:
                if drop.stream:
                    drop.stream.close()
        finally:
            if fd >= 0:
                os.close(fd)
            os.close(dir_fd)

    def source(self) -> Path | BinaryIO:
        """The opened file: by its descriptor's /proc path (read in place, so DuckDB parses
        while the copy runs), or as a stream where there is no /proc."""
        proc = Path(f"/proc/self/fd/{self.fd}")
        if proc.exists():
            return proc
        self.stream = os.fdopen(os.dup(self.fd), "rb")
        return self.stream

    def remove(self) -> None:
        """Delete the ingested file; a file dropped under the same name meanwhile stays."""
        with contextlib.suppress(FileNotFoundError):
            now = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
            if (now.st_dev, now.st_ino) == (self.st.st_dev, self.st.st_ino):
                os.unlink(self.name, dir_fd=self.dir_fd)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in after the check opens at once instead of waiting for a writer.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
}


def _check_regular(key: str, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(key, f"it is {_KINDS.get(stat.S_IFMT(st.st_mode), 'not a file')}")
    if st.st_nlink > 1:
        raise _not_regular(key, "it is a hard link (the same file has another name)")


def _not_regular(key: str, why: str) -> IngestError:
    # Never the link's target or the file's bytes: they may be outside the lake.
    return IngestError(
        f"{key.removeprefix(PREFIX)} was not read: {why}. Landing takes regular files only; "
        "copy the file itself into landing.",
        title="Not a regular file",
    )


def _regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _present(storage: Storage, key: str) -> bool:
    """Is there anything at `key` to move aside (a local link or FIFO counts)?"""
    if storage.kind != "local":
        return storage.exists(key)
    try:
        os.lstat(storage.uri(key))
    except (OSError, LakehouseError):
        return False
    return True


def dataset_for(f: LandingFile) -> str:
    """The dataset a landing file goes to: its folder's name, else one from its file name.

    A folder name that is not a valid dataset name comes back made safe; ingest refuses the
    file then (a folder name is the user's explicit choice, so it is not silently changed).
    """
    return safe_name(f.dataset, "dataset") if f.dataset else dataset_name_from_filename(f.name)


def reject(
    storage: Storage,
    key: str,
    error: LakehouseError,
    run_id: str | None = None,
    *,
    name: str | None = None,
) -> str:
    """Move a file to `landing/_rejected/` (as `name`, else where it was) with an error
    report beside it; the new key."""
    rel = name or key.removeprefix(PREFIX)
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
    if storage.kind == "local":  # renamed as it is: a link is moved, never followed
        src = Path(storage.uri(key))
        os.replace(src, storage.uri(dest))
        if src.parent != Path(storage.uri(f"{PREFIX}x")).parent:
            with contextlib.suppress(OSError):
                src.parent.rmdir()  # an emptied dataset folder
    else:
        storage.move(key, dest)
    return dest


def rejected(storage: Storage) -> list[dict[str, object]]:
    """Error reports of rejected files, newest first."""
    out = []
    for obj in storage.list_objects(f"{PREFIX}{REJECTED}/"):
        if obj.key.endswith(".error.json"):
            if storage.kind == "local" and not _regular(storage.uri(obj.key)):
                continue  # not one we wrote: a link could point anywhere
            try:
                out.append(json.loads(storage.get_bytes(obj.key)))
            except (LakehouseError, ValueError):
                continue
    return sorted(out, key=lambda r: str(r.get("rejected_at")), reverse=True)
