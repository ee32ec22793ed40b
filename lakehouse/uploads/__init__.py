"""Resumable uploads of any size (tus 1.0): the bytes stream into storage, the finished file
is ingested into bronze and its dataset's pipeline run starts at once."""

from lakehouse.uploads.records import UploadNotFound, UploadRecord

__all__ = ["UploadNotFound", "UploadRecord"]
