"""Private working folders under `state_dir/staging/`, and the sweep of crashed ones.

Each folder has a lock file beside it, locked (flock) by its owner for as long as it works
there. The kernel drops the lock when the owner dies however it dies (SIGKILL, OOM), so a
folder whose lock can be taken is a crash's leftover, safe to delete — however old it is and
however long a live owner has been working. Files from before lock files existed are left to
an age limit.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lakehouse.settings import Settings

LOCK = ".lock"
_UNLOCKED_ORPHAN_S = 24 * 3600


def root(settings: Settings) -> Path:
    return settings.state_dir / "staging"


@contextlib.contextmanager
def folder(settings: Settings, name: str, *, create: bool = True) -> Iterator[Path]:
    """`staging/<name>`, locked while the block runs and removed after it, whatever happens.
    `create=False` leaves making the folder to the caller (DuckDB's COPY wants to)."""
    base = root(settings)
    base.mkdir(parents=True, exist_ok=True)
    sweep(settings)
    path = base / name
    # The lock exists before the folder, so a sweep never sees the folder unlocked.
    lock = (base / f"{name}{LOCK}").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        if create:
            path.mkdir()
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        Path(lock.name).unlink(missing_ok=True)
        lock.close()


def _owner_gone(lock_path: Path) -> bool:
    try:
        f: IO[str] = lock_path.open("a")
    except OSError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # its owner holds it
        return True


def sweep(settings: Settings) -> int:
    """Remove folders (and their locks) whose owner died; returns how many went."""
    base = root(settings)
    if not base.is_dir():
        return 0
    removed, now = 0, time.time()
    for entry in base.iterdir():
        if entry.name.endswith(LOCK):
            mine = entry.with_name(entry.name.removesuffix(LOCK))
            if not mine.exists() and _owner_gone(entry):
                entry.unlink(missing_ok=True)  # its owner died before making the folder
            continue
        lock = entry.with_name(entry.name + LOCK)
        if lock.exists():
            if not _owner_gone(lock):
                continue
        else:
            try:
                if now - entry.stat().st_mtime < _UNLOCKED_ORPHAN_S:
                    continue
            except OSError:
                continue  # removed meanwhile
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
        removed += 1
    return removed
