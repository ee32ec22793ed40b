"""Storage backends behind one protocol."""

from lakehouse.settings import Settings
from lakehouse.storage.local import LocalStorage
from lakehouse.storage.protocol import ObjectInfo, ObjectNotFound, Storage


def open_storage(settings: Settings) -> Storage:
    """The backend the settings ask for (boto3, slow to import, only when S3 is used)."""
    if settings.storage == "s3":
        from lakehouse.storage.s3 import S3Storage

        return S3Storage(settings)
    return LocalStorage(settings.lake_root)


__all__ = ["LocalStorage", "ObjectInfo", "ObjectNotFound", "Storage", "open_storage"]
