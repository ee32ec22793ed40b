"""The statement guard for untrusted SQL: exactly one read-only query over the lake's tables.

DuckDB's own settings (enable_external_access, allowed_directories, lock_configuration) leave
holes that were reproduced on 1.5.5: a user CREATE SECRET redirects lake reads and writes,
enable_logging()/enable_profiling() bypass the lock and can abort the process, and
DROP/CREATE OR REPLACE hijack a shared instance. So before a query runs, its parsed form
(json_serialize_sql) is walked: tables must be lake views or the query's own CTEs, table
functions come from a short allowlist, and a few scalar functions are refused outright.
This is the first line; the worker process and its locked configuration are the second.
"""

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from lakehouse.errors import QueryError
from lakehouse.layers import TABLE_LAYERS

# Table functions that only compute: everything else (read_*, glob, *_metadata, duckdb_*,
# pragma_*, sniff_csv, query_table, ...) reads files, settings or secrets.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
# Scalar functions that run SQL, change the instance, or read the environment.
DENIED_FUNCTIONS = frozenset(
    {
        "query",
        "query_table",
        "json_execute_serialized_sql",
        "json_serialize_sql",
        "json_deserialize_sql",
        "enable_logging",
        "enable_profiling",
        "checkpoint",
        "force_checkpoint",
        "getenv",
        "current_setting",
        "read_text",
        "read_blob",
        "glob",
    }
)
LAKE_SCHEMAS = tuple(layer.value for layer in TABLE_LAYERS)
_DENIED_PREFIXES = ("disable_", "enable_", "pragma_", "duckdb_")
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)


class TableNotAllowed(QueryError):
    default_title = "Table not allowed"

    def __init__(self, msg: str, table: str) -> None:
        super().__init__(msg)
        self.table = table  # as written, without a schema when it had none


@dataclass(frozen=True)
class CheckedQuery:
    sql: str  # the single statement, without a trailing semicolon
    explain: bool
    tables: tuple[tuple[str, str], ...] = ()  # (layer, table) it reads, lower case


def check_query(sql: str, layers: tuple[str, ...] = LAKE_SCHEMAS) -> CheckedQuery:
    """Return the query if it may run on the sandbox; QueryError saying why not otherwise."""
    con = _parser()
    statements = _statements(con, sql)
    if len(statements) != 1:
        raise QueryError(
            f"Run one statement at a time (found {len(statements)}).",
            title="Only one statement is allowed",
        )
    stmt = statements[0]
    body = _EXPLAIN.sub("", stmt.query, count=1)
    explain = body != stmt.query
    kind = con.extract_statements(body)[0].type if explain else stmt.type
    if kind != duckdb.StatementType.SELECT:
        raise QueryError(
            f"Only SELECT (and EXPLAIN of a SELECT) may run here, not {kind.name}.",
            title="This statement is not allowed",
        )
    tree = _serialize(con, body)
    tables = _walk_checks(tree, layers)
    return CheckedQuery(stmt.query.strip().rstrip(";"), explain, tuple(sorted(tables)))


_local = threading.local()


def _parser() -> duckdb.DuckDBPyConnection:
    """A connection per thread that only parses (a new one costs ~9 ms, a query ~0.5 ms)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(":memory:", config={"enable_external_access": False})
    return con


def _statements(con: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
    if not sql.strip():
        raise QueryError("The query is empty.", title="Nothing to run")
    try:
        return list(con.extract_statements(sql))
    except duckdb.Error as e:
        raise QueryError(str(e).split("\n\nLINE")[0], title="Syntax error") from e


def _serialize(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    assert row is not None
    tree = json.loads(row[0])
    if tree.get("error"):
        raise QueryError(tree.get("error_message", "unparseable"), title="Syntax error")
    return tree


def iter_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in a json_serialize_sql tree, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from iter_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from iter_nodes(value)


def cte_names(nodes: list[dict[str, Any]]) -> set[str]:
    """Names the query's WITH clauses define (lower case), at any depth."""
    return {
        entry["key"].lower()
        for n in nodes
        if isinstance(n.get("cte_map"), dict)
        for entry in n["cte_map"].get("map", [])
    }


def _walk_checks(tree: Any, layers: tuple[str, ...]) -> set[tuple[str, str]]:
    nodes = list(iter_nodes(tree))
    ctes = cte_names(nodes)
    tables = set()
    for n in nodes:
        kind = n.get("type")
        if kind == "BASE_TABLE":
            if lake_table := _check_table(n, layers, ctes):
                tables.add(lake_table)
        elif kind == "TABLE_FUNCTION":
            name = str(n.get("function", {}).get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS:
                raise QueryError(
                    f"{name}() is not available here: query the lake's tables "
                    f"({', '.join(layers)}) instead.",
                    title="Function not allowed",
                )
        elif n.get("class") == "FUNCTION":
            name = str(n.get("function_name", "")).lower()
            if name in DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES):
                raise QueryError(f"{name}() is not available here.", title="Function not allowed")
    return tables


def _check_table(
    n: dict[str, Any], layers: tuple[str, ...], ctes: set[str]
) -> tuple[str, str] | None:
    """(layer, table) for a lake table, None for a CTE; TableNotAllowed for anything else."""
    schema, table = str(n.get("schema_name", "")), str(n.get("table_name", ""))
    if n.get("catalog_name"):
        schema = ""  # lake.gold.x: other catalogs are never attached in the sandbox
    if schema.lower() in layers and not n.get("catalog_name"):
        return schema.lower(), table.lower()
    if not schema and table.lower() in ctes:
        return None
    shown = f"{schema}.{table}" if schema else table
    raise TableNotAllowed(
        f"{shown!r} is not a table of the lake. Query tables as "
        f"{' / '.join(f'{la}.<table>' for la in layers)}; files, URLs and other databases "
        "cannot be read here.",
        table=shown,
    )
