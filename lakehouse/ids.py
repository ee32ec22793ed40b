"""Identifiers for batches and snapshots: sortable by time, unique without coordination."""

import secrets
from datetime import UTC, datetime


def new_id() -> str:
    """`20261126T152145123456Z-3f9a1c`: lexical order is creation order (to the microsecond)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def id_time(value: str) -> datetime:
    """When `new_id()` made `value`."""
    return datetime.strptime(value.split("-")[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
