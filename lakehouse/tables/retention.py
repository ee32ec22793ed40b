"""How long a silver/gold table's versions stay: Delta's vacuum and log cleanup, with the
readers' grace on top (`RATATOUILLE_TABLE_HISTORY_HOURS`, `RATATOUILLE_SNAPSHOTS_GRACE_S`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lakehouse.errors import LakehouseError
from lakehouse.layers import Layer, check_table_name
from lakehouse.settings import Settings
from lakehouse.storage import Storage
from lakehouse.tables import delta

# A file no commit names this old is a crashed writer's: no publish takes that long to commit.
ORPHAN_AGE = timedelta(hours=1)


def table_config(settings: Settings) -> dict[str, str]:
    """Delta table properties: how long versions stay restorable, for other engines' vacuum
    and log cleanup too (ours passes the settings explicitly)."""
    hours = settings.table_history_hours
    return {
        "delta.logRetentionDuration": f"interval {max(hours, 1)} hours",
        "delta.deletedFileRetentionDuration": f"interval {hours} hours",
    }


def vacuum(
    settings: Settings,
    storage: Storage,
    layer: Layer | str,
    table: str,
    orphan_age: timedelta = ORPHAN_AGE,
) -> int:
    """Delete the files no version within the history window needs, and files a crashed
    writer left (never committed) once they are `orphan_age` old. Returns how many went.

    The files of a version that was current less than `snapshots_grace_s` ago stay whatever
    the window: a query that listed them just before the switch is still reading them. A file
    no commit names is left alone while young: it may be a publish that has not committed yet.
    (Vacuum writes log entries, so it only runs when there is something to delete.)"""
    layer = Layer(layer)
    if layer not in delta.PUBLISHABLE:
        raise LakehouseError(f"{layer.value} has no Delta tables.", title="Wrong layer")
    what = f"{layer.value}.{check_table_name(table)}"
    dt = delta.open_table(delta.location(storage, layer, table), what)
    hours = settings.table_history_hours
    orphan_hours = max(hours, math.ceil(orphan_age.total_seconds() / 3600))
    keep = _in_grace(dt, settings.snapshots_grace_s, what)
    gone = 0
    try:
        # Lite: files the log removed (never an uncommitted one), then full: unnamed files too.
        for retention, full in ((hours, False), (orphan_hours, True)):
            kwargs: dict[str, Any] = {
                "retention_hours": retention,
                "enforce_retention_duration": False,
                "full": full,
                "keep_versions": keep or None,
            }
            if dt.vacuum(dry_run=True, **kwargs):
                gone += len(dt.vacuum(dry_run=False, **kwargs))
        dt.cleanup_metadata()
    except (DeltaError, OSError, ValueError, OverflowError) as e:
        raise delta.translate(e, what) from e
    return gone


def _in_grace(dt: DeltaTable, grace_s: int, what: str) -> list[int]:
    """Versions that were current within the last `grace_s` seconds."""
    if grace_s <= 0:
        return []
    try:
        entries = dt.history(limit=64)
    except (DeltaError, OSError) as e:
        raise delta.translate(e, what) from e
    since = (datetime.now(UTC) - timedelta(seconds=grace_s)).timestamp() * 1000
    data = [h for h in entries if h.get("operation") not in delta.NO_DATA_CHANGE]  # newest first
    # A writer committing meanwhile can leave entries numbered past the loaded version (or
    # below 0): only versions this table object knows are named.
    latest = dt.version()
    return [
        v
        for newer, old in pairwise(data)
        if int(newer.get("timestamp", 0)) >= since and 0 <= (v := int(old["version"])) <= latest
    ]
