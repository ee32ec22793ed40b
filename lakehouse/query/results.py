"""What a query gives back: rows as Arrow with honest truncation, or an export's summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa

from lakehouse.query.limits import MB
from lakehouse.query.sandbox import ExportFormat


@dataclass(frozen=True)
class QueryResult:
    sql: str
    table: pa.Table  # at most row_cap rows
    columns: list[tuple[str, str]]  # name, DuckDB type
    truncated: bool  # the query returned more than fits in row_cap rows and the byte cap
    elapsed_s: float
    row_cap: int
    truncated_reason: Literal["rows", "bytes"] | None = None  # which cap cut it
    max_result_bytes: int = 0

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def truncation_note(self) -> str | None:
        """What a person should read about the cut, or None when nothing was cut."""
        if not self.truncated:
            return None
        if self.truncated_reason != "bytes":
            return f"Showing the first {self.row_cap:,} rows; the query returns more."
        cap = f"{self.max_result_bytes / MB:,.0f} MB"
        if not self.rows:
            return (
                f"The first row alone is larger than the {cap} result cap, so no rows are "
                "shown. Export the result, or select fewer or shorter columns."
            )
        return (
            f"Showing the first {self.rows:,} rows, which fill the {cap} result cap; the query "
            "returns more."
        )


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: ExportFormat
    rows: int
    bytes: int
    elapsed_s: float
