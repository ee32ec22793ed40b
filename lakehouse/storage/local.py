"""Storage in a local folder: one sub-folder per layer, atomic writes by rename."""

import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from lakehouse.errors import StorageError
from lakehouse.layers import Layer
from lakehouse.storage.protocol import (
    ObjectInfo,
    ObjectNotFound,
    check_prefix,
    delete_listed,
    split_key,
)

# Files being written start with this; listings skip them, so readers never see them.
_TMP_PREFIX = ".tmp-"


class LocalStorage:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        for layer in Layer:
            (self.root / layer.value).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        layer, rest = split_key(key)
        return self.root / layer.value / rest

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def _tmp_beside(self, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return dest.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}-{dest.name}"

    def put_file(self, key: str, path: Path, *, move: bool = False, link: bool = False) -> None:
        dest = self._path(key)
        tmp = self._tmp_beside(dest)
        try:
            if link and not move:
                try:
                    os.link(path, tmp)
                    os.replace(tmp, dest)
                    return
                except OSError:  # another filesystem, or no hard links: copy
                    tmp.unlink(missing_ok=True)
            if move:
                try:
                    os.replace(path, dest)
                    return
                except OSError:  # another filesystem: copy, then rename
                    pass
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
            if move:
                path.unlink(missing_ok=True)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StorageError(
                f"Could not write {dest}: {e}", title="Could not write to the lake"
            ) from e

    def put_bytes(self, key: str, data: bytes) -> None:
        dest = self._path(key)
        tmp = self._tmp_beside(dest)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StorageError(
                f"Could not write {dest}: {e}", title="Could not write to the lake"
            ) from e

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            raise ObjectNotFound(f"No object at {key!r}.") from e

    def download(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self._path(key), dest)
        except FileNotFoundError as e:
            raise ObjectNotFound(f"No object at {key!r}.") from e

    def move(self, src: str, dest: str) -> None:
        path = self._path(src)
        if not path.is_file():
            raise ObjectNotFound(f"No object at {src!r}.")
        self.put_file(dest, path, move=True)
        self._prune(path.parent)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        layer, rest = check_prefix(prefix)
        base = self.root / layer.value
        # Walk only below the deepest folder the prefix names.
        start = base / rest.rpartition("/")[0]
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(base).as_posix()
            for name in sorted(filenames):
                if name.startswith(_TMP_PREFIX):
                    continue
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if not rel.startswith(rest):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:  # deleted while listing
                    continue
                yield ObjectInfo(
                    f"{layer.value}/{rel}", st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)
                )

    def list_dirs(self, prefix: str) -> list[str]:
        layer, rest = check_prefix(prefix)
        folder = self.root / layer.value / rest
        try:
            return sorted(
                p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
            )
        except FileNotFoundError:
            return []

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            self._prune(path.parent)

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty, up to the layer folder."""
        while folder.parent != self.root and folder != self.root:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def delete_prefix(self, prefix: str) -> int:
        return delete_listed(self, prefix)
