"""Storage backends behind one protocol."""

from lakehouse.settings import Settings
from lakehouse.storage.base import ObjectInfo, ObjectNotFound, Storage
from lakehouse.storage.local import LocalStorage
from lakehouse.storage.s3 import S3Storage


def open_storage(settings: Settings) -> Storage:
    """The backend the settings ask for."""
    if settings.storage == "s3":
        return S3Storage(settings)
    return LocalStorage(settings.lake_root)


__all__ = ["LocalStorage", "ObjectInfo", "ObjectNotFound", "S3Storage", "Storage", "open_storage"]
