"""The statement guard for untrusted SQL: exactly one read-only query over the lake's tables.

DuckDB's own settings (enable_external_access, allowed_directories, lock_configuration) leave
holes that were reproduced on 1.5.5: a user CREATE SECRET redirects lake reads and writes,
enable_logging()/enable_profiling() bypass the lock and can abort the process, and
DROP/CREATE OR REPLACE hijack a shared instance. So before a query runs, its parsed form
(json_serialize_sql) is walked: tables must be lake views (<layer>.<table>, no catalog) or
WITH names in scope where they are used, table functions come from a short allowlist, a few
scalar functions are refused outright, and node kinds the walk does not know are refused.
This is the first line; the worker process and its locked configuration are the second.
"""

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import duckdb

from lakehouse.duck import without_line_context
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
# Nesting of the parsed query (json_serialize_sql) the guard accepts: 2-4 levels per
# subquery or operator, so ~125-250 nested ones; far below where parsing it in Python fails.
MAX_TREE_DEPTH = 500
# DuckDB's parser takes time quadratic in some shapes (long chains of AND), in the caller's
# process: longer text is refused before it is parsed.
MAX_QUERY_CHARS = 100_000


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
    if len(sql) > MAX_QUERY_CHARS:
        raise QueryError(
            f"The query is {len(sql):,} characters long; at most {MAX_QUERY_CHARS:,} are "
            "accepted. Put long lists of values in a table (upload them) and join it.",
            title="Query too long",
        )
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
    kind = _statements(con, body)[0].type if explain else stmt.type
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
    """A connection per thread that only parses (a new one costs far more than a parse)."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(":memory:", config={"enable_external_access": False})
    return con


def _too_deep(limit: str) -> QueryError:
    return QueryError(
        f"The query nests parentheses, subqueries or operators deeper than can be checked "
        f"({limit}). Flatten it, e.g. with WITH clauses, IN lists or fewer nested brackets.",
        title="Query too deeply nested",
    )


def _statements(con: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
    if not sql.strip():
        raise QueryError("The query is empty.", title="Nothing to run")
    try:
        return list(con.extract_statements(sql))
    except duckdb.Error as e:
        msg = without_line_context(str(e))
        # The parser's own nesting limits: max_expression_depth, and bison's stack ("memory
        # exhausted", which is about nesting, not RAM).
        if "expression depth" in msg or "memory exhausted" in msg:
            raise _too_deep("the SQL parser's limit") from e
        raise QueryError(msg, title="Syntax error") from e


def _serialize(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    assert row is not None
    # json.loads recurses once per level (and raises RecursionError near Python's limit of
    # 1,000 frames, minus what the caller already uses), so the depth is measured first.
    if _deeper_than(row[0], MAX_TREE_DEPTH):
        raise _too_deep(f"at most {MAX_TREE_DEPTH} levels in its parsed form")
    tree = json.loads(row[0])
    if tree.get("error"):
        raise QueryError(tree.get("error_message", "unparseable"), title="Syntax error")
    return tree


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _deeper_than(text: str, limit: int) -> bool:
    """Whether the JSON text nests objects and arrays more than `limit` levels."""
    if text.count("{") + text.count("[") <= limit:
        return False  # not enough brackets to be deeper: most queries stop here
    brackets = _BRACKETS.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def iter_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in a json_serialize_sql tree, depth first (iterative: no recursion limit)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def cte_names(nodes: list[dict[str, Any]]) -> set[str]:
    """Names the query's WITH clauses define (lower case), at any depth, whatever their scope.

    Only for rewriting trusted SQL (benchmarks): the guard resolves names by scope instead.
    """
    return {
        entry["key"].lower()
        for n in nodes
        if isinstance(n.get("cte_map"), dict)
        for entry in n["cte_map"].get("map", [])
    }


# The parsed tree's building blocks. Query nodes open a scope (their WITH names); table
# references are checked one by one; any other kind of query node or table reference (a new
# DuckDB version may add some) is refused, because the walk could not tell what it reads.
_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
_OWN_NAME = frozenset({"RECURSIVE_CTE_NODE", "CTE_NODE"})  # see their own name: only as a body
_TABLE_REFS = frozenset(
    {"BASE_TABLE", "TABLE_FUNCTION", "SHOW_REF", "JOIN", "SUBQUERY", "EXPRESSION_LIST", "EMPTY"}
    | {"PIVOT"}
)
# Class-less objects with a `type` that carry only expressions (walked like any expression).
_PLAIN = frozenset(
    {
        "ORDER_MODIFIER",
        "LIMIT_MODIFIER",
        "LIMIT_PERCENT_MODIFIER",
        "DISTINCT_MODIFIER",
        "ORDER_DEFAULT",
        "ASCENDING",
        "DESCENDING",
    }
)
_TABLE_KEYS = frozenset({"table_name", "cte_map", "cte_name", "schema_name", "catalog_name"})
# A name DuckDB may read as a file or URL (replacement scan): never a table or a WITH name.
_PATHLIKE = re.compile(r"[/\\.:~*?\[\]{}$]")

# Visible WITH names of a scope: True = usable; False = the recursive CTE's own name in its
# anchor part, where DuckDB does not bind it to the CTE (it reads an outer table instead).
Scope = dict[str, bool]


def _walk_checks(tree: Any, layers: tuple[str, ...]) -> set[tuple[str, str]]:
    """The lake tables the query reads; QueryError for anything else it could read.

    Iterative, with the scope of WITH names carried beside each node: a name counts only in
    the query that defines it (its later WITH entries, its body and the subqueries in them;
    the CTE's own body only when it is recursive), never in an enclosing or sibling query.
    """
    tables: set[tuple[str, str]] = set()
    stack: list[tuple[Any, Scope]] = [(tree, {})]
    cte_bodies: set[int] = set()  # recursive nodes met as a WITH entry's body, where they belong
    while stack:
        node, scope = stack.pop()
        if isinstance(node, list):
            stack.extend((item, scope) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("type") if isinstance(node.get("type"), str) else None
        if "class" in node:  # an expression
            if node["class"] == "FUNCTION":
                _check_function(node)
            stack.extend((value, scope) for value in node.values())
        elif kind in _QUERY_NODES:
            if kind in _OWN_NAME and id(node) not in cte_bodies:
                raise _unchecked(kind)
            stack.extend(_enter_query(node, scope, cte_bodies))
        elif kind in _TABLE_REFS:
            if kind == "BASE_TABLE":
                if lake_table := _check_table(node, layers, scope):
                    tables.add(lake_table)
            elif kind == "TABLE_FUNCTION":
                _check_table_function(node, layers)
            elif kind == "SHOW_REF" and (node.get("table_name") or not node.get("query")):
                raise QueryError(
                    "SHOW of the database is not available here; the Catalog page lists the "
                    "lake's tables, and DESCRIBE <layer>.<table> shows one table's columns.",
                    title="This statement is not allowed",
                )
            rest = (v for k, v in node.items() if k not in _TABLE_KEYS)
            stack.extend((value, scope) for value in rest)
        elif (kind and kind not in _PLAIN and not kind.endswith("_TYPE_INFO")) or (
            not kind and _TABLE_KEYS & node.keys()
        ):
            raise _unchecked(kind or "unnamed")
        else:
            stack.extend((value, scope) for value in node.values())
    return tables


def _unchecked(kind: str) -> QueryError:
    return QueryError(
        f"The query uses a construct ({kind}) whose reads cannot be checked, so it is not "
        "run. Rewrite it with plain SELECT, WITH, JOIN and subqueries.",
        title="This query cannot be checked",
    )


def _enter_query(
    node: dict[str, Any], scope: Scope, cte_bodies: set[int]
) -> list[tuple[Any, Scope]]:
    """The node's parts, each with the WITH names it sees."""
    todo: list[tuple[Any, Scope]] = []
    inner = dict(scope)
    for entry in (node.get("cte_map") or {}).get("map") or []:
        name = _with_name(entry.get("key"))
        value = entry.get("value") or {}
        body = (value.get("query") or {}).get("node") or {}
        if body.get("type") in _OWN_NAME:
            if _with_name(body.get("cte_name")) != name:
                raise _unchecked(body["type"])
            cte_bodies.add(id(body))
        todo.append((value, dict(inner)))  # earlier WITH names only, not its own
        inner[name] = True
    rest = {k: v for k, v in node.items() if k != "cte_map"}
    kind = node["type"]
    if kind in _OWN_NAME:
        own = _with_name(rest.pop("cte_name", None))
        first, second = ("left", "right") if kind == "RECURSIVE_CTE_NODE" else ("query", "child")
        todo.append((rest.pop(first, None), {**inner, own: False}))
        todo.append((rest.pop(second, None), {**inner, own: True}))
    todo.extend((value, inner) for value in rest.values())
    return todo


def _with_name(key: Any) -> str:
    name = str(key or "")
    if not name or _PATHLIKE.search(name):
        raise TableNotAllowed(
            f"{name!r} cannot name a WITH query: use a plain name (letters, digits, _), "
            "not a file path or URL.",
            table=name,
        )
    return name.lower()


def _check_function(node: dict[str, Any]) -> None:
    name = str(node.get("function_name", "")).lower()
    if name in DENIED_FUNCTIONS or name.startswith(_DENIED_PREFIXES):
        raise QueryError(f"{name}() is not available here.", title="Function not allowed")


def _check_table_function(node: dict[str, Any], layers: tuple[str, ...]) -> None:
    name = str((node.get("function") or {}).get("function_name", "")).lower()
    if name not in ALLOWED_TABLE_FUNCTIONS:
        raise QueryError(
            f"{name}() is not available here: query the lake's tables "
            f"({', '.join(layers)}) instead.",
            title="Function not allowed",
        )


def _check_table(
    n: dict[str, Any], layers: tuple[str, ...], scope: Scope
) -> tuple[str, str] | None:
    """(layer, table) for a lake table, None for a WITH name in scope; TableNotAllowed else.

    Only <layer>.<table> and in-scope WITH names exist: no catalog qualifier (system, memory,
    temp, another database), no other schema (main, information_schema, pg_catalog), and a
    name that looks like a path or URL is never a table, even where a WITH has that name.
    """
    catalog = str(n.get("catalog_name") or "")
    schema, table = str(n.get("schema_name") or ""), str(n.get("table_name") or "")
    if not catalog and schema.lower() in layers and table:
        return schema.lower(), table.lower()
    if not catalog and not schema and not _PATHLIKE.search(table) and scope.get(table.lower()):
        return None
    shown = ".".join(part for part in (catalog, schema, table) if part)
    raise TableNotAllowed(
        f"{shown!r} is not a table of the lake. Query tables as "
        f"{' / '.join(f'{la}.<table>' for la in layers)}; files, URLs and other databases "
        "cannot be read here, and a WITH name counts only inside the query that defines it.",
        table=shown,
    )
