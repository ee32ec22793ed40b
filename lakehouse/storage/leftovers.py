"""Objects a failed write could not remove because storage was down when it failed.

A write that fails part-way deletes what it wrote. If storage is unreachable at that moment
(the usual reason the write failed), the prefix is noted under `state_dir/leftovers/` and the
next write through this state folder deletes it first. Leftovers are never visible to readers
(no manifest, no pointer); this keeps them from piling up. Prefixes hold a fresh batch or
snapshot id, so nothing else ever writes there again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from lakehouse.errors import LakehouseError
from lakehouse.settings import Settings
from lakehouse.storage import Storage


def _folder(settings: Settings) -> Path:
    return settings.state_dir / "leftovers"


def _where(storage: Storage, prefix: str) -> str:
    return storage.uri(prefix.rstrip("/"))


def remove(settings: Settings, storage: Storage, prefix: str) -> None:
    """Delete `prefix`, or note it for a later write when storage cannot be reached now.
    Never raises: it runs while another error is on its way to the user."""
    try:
        storage.delete_prefix(prefix)
    except LakehouseError:
        uri = _where(storage, prefix)
        note = _folder(settings) / f"{hashlib.sha256(uri.encode()).hexdigest()[:16]}.json"
        with contextlib.suppress(OSError):  # a full disk: the orphan sweep is the backstop
            note.parent.mkdir(parents=True, exist_ok=True)
            note.write_text(json.dumps({"uri": uri, "prefix": prefix}))


def sweep(settings: Settings, storage: Storage) -> int:
    """Delete the noted leftovers of this storage; returns how many were removed."""
    folder = _folder(settings)
    if not folder.is_dir():
        return 0
    removed = 0
    for note in sorted(folder.glob("*.json")):
        try:
            entry = json.loads(note.read_text())
        except (OSError, ValueError):
            note.unlink(missing_ok=True)
            continue
        if not isinstance(entry, dict) or entry.get("uri") != _where(
            storage, str(entry.get("prefix", ""))
        ):
            continue  # another lake's (a different bucket or root shares this state folder)
        try:
            storage.delete_prefix(entry["prefix"])
        except LakehouseError:
            return removed  # still unreachable: the next write tries again
        with contextlib.suppress(OSError):
            note.unlink()
        removed += 1
    return removed
