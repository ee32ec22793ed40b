"""What a query reads: the lake tables it names, and the snapshots its result depends on."""

from dataclasses import dataclass

from lakehouse.errors import LakehouseError
from lakehouse.query import guard
from lakehouse.tables.catalog import TableInfo


@dataclass(frozen=True)
class QueryInputs:
    """What a query reads: `layer.table` → current snapshot id of each lake table it names
    (every table when the query cannot be parsed), and the tables it names that do not exist."""

    snapshots: dict[str, str]
    missing: list[str]


def tables_read(sql: str) -> list[str] | None:
    """The `layer.table` names the SQL reads, sorted; None if the query guard refuses it (it
    reads more than lake tables, or cannot be parsed)."""
    try:
        read = guard.check_query(sql).tables  # every lake layer
    except LakehouseError:
        return None
    return sorted(f"{lay}.{name}" for lay, name in read)


def inputs_of(sql: str, tables: list[TableInfo]) -> dict[str, str] | None:
    """`layer.table` → snapshot id for each lake table the SQL reads; None if it reads more
    than lake tables (files, functions the query guard does not know) or cannot be parsed."""
    names = tables_read(sql)
    if names is None:
        return None
    by_name = {t.qualified_name: t.snapshot_id for t in tables}
    return {n: by_name[n] for n in names if n in by_name}


def query_inputs(sql: str, tables: list[TableInfo]) -> QueryInputs:
    """The snapshots a query's result depends on, from a catalog listing (`Lakehouse.tables()`).

    A cache keyed by them recomputes exactly when one of those tables gets a new snapshot. A
    query the guard refuses depends on everything: running it will say what is wrong.
    """
    by_name = {t.qualified_name: t.snapshot_id for t in tables}
    names = tables_read(sql)
    if names is None:
        return QueryInputs(by_name, [])
    return QueryInputs(
        {n: by_name[n] for n in names if n in by_name}, [n for n in names if n not in by_name]
    )
