"""`lake.check(description, condition)`: a notebook's data checks, which a step's run turns
into Dagster asset checks."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from lakehouse.errors import QueryError

if TYPE_CHECKING:
    import pyarrow as pa


class _RunsSql(Protocol):
    def sql(self, query: str) -> pa.Table: ...


_QUERY = re.compile(r"^\s*(\(\s*)*(select|with|from|values)\b", re.I)
MAX_DESCRIPTION = 200


def check_description(description: str) -> str:
    text = " ".join(str(description).split())
    if not text:
        raise QueryError("A check needs a description (what should hold).", title="Bad check")
    return text[:MAX_DESCRIPTION]


def evaluate_check(lake: _RunsSql, description: str, condition: bool | str) -> tuple[bool, str]:
    """(passed, what was seen). SQL must give exactly one boolean: a query with one row and
    one column, or an expression (`(SELECT min(x) FROM gold.t) >= 0`)."""
    check_description(description)
    if not isinstance(condition, str):
        return bool(condition), f"value: {condition!r}"[:300]
    sql = condition if _QUERY.match(condition) else f"SELECT ({condition})"
    result = lake.sql(sql)
    if result.num_rows != 1 or result.num_columns != 1:
        raise QueryError(
            f"The check {description!r} must give one boolean; its SQL gave "
            f"{result.num_rows} row(s) of {result.num_columns} column(s).",
            title="Bad check",
        )
    value = result.column(0)[0].as_py()
    if not isinstance(value, bool) and value is not None:
        raise QueryError(
            f"The check {description!r} must give a boolean; its SQL gave {value!r}.",
            title="Bad check",
        )
    return value is True, f"SQL gave {value}"
