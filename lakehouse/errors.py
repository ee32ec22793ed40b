"""Errors meant for people: a short title and a message that says what to do."""


class LakehouseError(Exception):
    """Base error; `title` is a headline, `msg` the explanation (and the fix, where known)."""

    default_title = "Lakehouse error"

    def __init__(self, msg: str, title: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.title = title or self.default_title

    def __str__(self) -> str:
        return f"{self.title}: {self.msg}"


class ConfigError(LakehouseError):
    default_title = "Configuration problem"


class StorageError(LakehouseError):
    default_title = "Storage problem"


class IngestError(LakehouseError):
    default_title = "Could not ingest this file"


class QueryError(LakehouseError):
    default_title = "Could not run this query"


class TableNotFoundError(LakehouseError):
    default_title = "No such table"
