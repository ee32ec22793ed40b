"""The storage contract: keys are `<layer>/<path>`, objects are immutable once visible."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from lakehouse.errors import StorageError
from lakehouse.layers import Layer


class ObjectNotFound(StorageError):
    default_title = "Object not found"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


def split_key(key: str) -> tuple[Layer, str]:
    """Split `bronze/a/b` into (Layer.BRONZE, "a/b"); refuse anything that could leave a layer."""
    parts = key.split("/")
    if (
        len(parts) < 2
        or parts[0] not in Layer.__members__.values()
        or any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts[1:])
    ):
        raise StorageError(f"Invalid storage key {key!r}.", title="Invalid storage key")
    return Layer(parts[0]), "/".join(parts[1:])


def check_prefix(prefix: str) -> tuple[Layer, str]:
    """Like split_key for listing prefixes: `bronze/` and `bronze/orders/` are fine."""
    layer_name, _, rest = prefix.partition("/")
    if layer_name not in Layer.__members__.values():
        raise StorageError(f"Invalid storage prefix {prefix!r}.", title="Invalid storage key")
    if rest:
        split_key(f"{layer_name}/{rest.rstrip('/')}")
    return Layer(layer_name), rest


class Storage(Protocol):
    """What the lake needs from a backend; `LocalStorage` and `S3Storage` implement it."""

    kind: str

    def uri(self, key: str) -> str:
        """Where DuckDB reads the object: a local path or an `s3://` URL."""
        ...

    def put_file(self, key: str, path: Path, *, move: bool = False, link: bool = False) -> None:
        """Make the file visible at `key` in one step (readers never see a partial object).

        `move`: the file is ours to take; `link`: it is ours and stays unchanged, so a local
        lake may hard-link it (no copy; the caller deletes its own name afterwards)."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes:
        """Raise ObjectNotFound if there is no object at `key`."""
        ...

    def download(self, key: str, dest: Path) -> None: ...

    def exists(self, key: str) -> bool: ...

    def move(self, src: str, dest: str) -> None:
        """Move an object (within or across layers); `dest` appears whole or not at all."""
        ...

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under `prefix`, recursively, in key order."""
        ...

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the immediate sub-folders of `prefix` (which ends with `/`), sorted."""
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Delete objects; keys that do not exist are ignored."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete everything under `prefix`; returns how many objects went."""
        ...


def delete_listed(storage: Storage, prefix: str) -> int:
    """Delete every object under `prefix` as listed now; return how many there were."""
    keys = [o.key for o in storage.list_objects(prefix)]
    storage.delete(keys)
    return len(keys)
