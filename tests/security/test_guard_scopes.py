"""The statement guard resolves names by scope (findings 1, 9 and 12 of the security review).

Before: WITH names were collected from every nesting level and accepted anywhere, so a CTE
defined in one subquery let a file path, a system view or another catalog's table through in
another; a catalog-qualified name passed beside any CTE of its table's name; and a deeply
nested query raised RecursionError. The first rows of each table below were accepted (or
crashed) then; the plain path, schema and catalog rows guard the rules that already held.
"""

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse import Lakehouse, QueryError, Settings
from lakehouse.query.guard import MAX_TREE_DEPTH, TableNotAllowed, check_query
from tests.report import Record
from tests.support.lakedirs import lake_dirs

FILE = "/some/file.csv"
FINDING_1 = (
    f"SELECT * FROM '{FILE}' WHERE EXISTS "
    f'(WITH "{FILE}" AS (SELECT 1 AS a) SELECT a FROM "{FILE}")'
)

# (what, sql): a name used outside the query that defines it, or a name that is no lake table.
OUT_OF_SCOPE = [
    ("finding 1 as reported", FINDING_1),
    (
        "CTE named like a path, defined in the outer query",
        f'WITH "{FILE}" AS (SELECT 1 AS a) SELECT * FROM "{FILE}"',
    ),
    (
        "CTE defined in a sibling FROM subquery",
        "SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x",
    ),
    (
        "CTE defined in an EXISTS subquery, used outside it",
        "SELECT * FROM x WHERE EXISTS (WITH x AS (SELECT 1 AS a) SELECT a FROM x)",
    ),
    (
        "CTE defined in one UNION branch, used in the other",
        "(WITH x AS (SELECT 1) SELECT * FROM x) UNION ALL SELECT * FROM x",
    ),
    (
        "CTE defined in a scalar subquery",
        "SELECT (WITH x AS (SELECT 1) SELECT * FROM x) AS v FROM x",
    ),
    (
        "CTE defined in a lateral join",
        "SELECT * FROM gold.s, LATERAL (WITH x AS (SELECT 1) SELECT * FROM x) l, x",
    ),
    (
        "CTE defined in a table function's argument",
        "SELECT * FROM range((WITH x AS (SELECT 3) SELECT * FROM x)), x",
    ),
    (
        "recursive CTE whose anchor reads its own name (DuckDB binds it to an outer table)",
        "WITH RECURSIVE x AS (SELECT * FROM x UNION ALL SELECT * FROM x) SELECT * FROM x",
    ),
    ("non-recursive CTE reading its own name", "WITH x AS (SELECT * FROM x) SELECT * FROM x"),
    (
        "CTE reading a later CTE of the same WITH",
        "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a",
    ),
    (
        "CTE named like a lake table shadows it only inside its scope",
        "SELECT * FROM sales WHERE EXISTS (WITH sales AS (SELECT 1) SELECT 1 FROM sales)",
    ),
    (
        "finding 9: system.main.duckdb_views beside a CTE of that name",
        "SELECT * FROM system.main.duckdb_views "
        "WHERE EXISTS (WITH duckdb_views AS (SELECT 1) SELECT 1 FROM duckdb_views)",
    ),
    ("system catalog", "SELECT * FROM system.main.duckdb_views"),
    (
        "memory catalog beside a CTE of that name",
        "WITH x AS (SELECT 1) SELECT * FROM memory.main.x",
    ),
    ("temp schema beside a CTE of that name", "WITH x AS (SELECT 1) SELECT * FROM temp.x"),
    ("catalog-qualified lake table", "SELECT * FROM lake.gold.sales"),
    ("main schema", "SELECT * FROM main.x"),
    ("pg_catalog", "SELECT * FROM pg_catalog.pg_tables"),
    ("system view, unqualified", "SELECT * FROM duckdb_views"),
    ("DESCRIBE of a system view", "DESCRIBE duckdb_views"),
    ("a path in a PIVOT", "SELECT * FROM (PIVOT '/etc/passwd' ON a IN ('x') USING count(*))"),
    ("a path in VALUES", "SELECT * FROM (VALUES ((SELECT 1 FROM 'x.csv'))) t(a)"),
    ("a quoted path as a table", 'SELECT * FROM "x.csv"'),
    ("a URL as a table", "SELECT * FROM 'http://169.254.169.254/latest/meta-data'"),
]


@pytest.mark.parametrize(("what", "sql"), OUT_OF_SCOPE, ids=[w for w, _ in OUT_OF_SCOPE])
def test_a_name_outside_its_scope_is_refused(what: str, sql: str, record: Record) -> None:
    record(f"guard: {what}", "refused as 'Table not allowed'")
    with pytest.raises(TableNotAllowed) as err:
        check_query(sql)
    assert err.value.title == "Table not allowed"
    assert err.value.msg


# (what, sql, lake tables it reads)
IN_SCOPE = [
    ("CTE used in its query", "WITH x AS (SELECT * FROM gold.g) SELECT * FROM x", ["gold.g"]),
    (
        "CTE used in a subquery of its query",
        "WITH x AS (SELECT 1 AS a) SELECT * FROM silver.t WHERE a IN (SELECT a FROM x)",
        ["silver.t"],
    ),
    (
        "nested CTE reading an outer one",
        "WITH x AS (SELECT * FROM gold.g) SELECT * FROM (WITH y AS (SELECT * FROM x) "
        "SELECT * FROM y)",
        ["gold.g"],
    ),
    (
        "recursive CTE",
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
        "SELECT * FROM r",
        [],
    ),
    (
        "CTE reading an earlier CTE",
        "WITH a AS (SELECT * FROM silver.t), b AS (SELECT * FROM a) SELECT * FROM b",
        ["silver.t"],
    ),
    (
        "same name in two sibling scopes",
        "SELECT * FROM (WITH x AS (SELECT * FROM gold.g) SELECT * FROM x) p, "
        "(WITH x AS (SELECT * FROM silver.t) SELECT * FROM x) q",
        ["gold.g", "silver.t"],
    ),
    (
        "WITH over a UNION: both branches see it",
        "WITH x AS (SELECT * FROM gold.g) SELECT * FROM x UNION ALL SELECT * FROM x",
        ["gold.g"],
    ),
    (
        "CTE in a lateral join and a table function",
        "WITH n AS (SELECT 2 AS k) SELECT * FROM silver.t, LATERAL (SELECT * FROM n) l, "
        "range((SELECT k FROM n))",
        ["silver.t"],
    ),
    ("DESCRIBE of a lake table", "DESCRIBE gold.g", ["gold.g"]),
    (
        "PIVOT of a lake table",
        "SELECT * FROM (PIVOT gold.g ON a IN ('x') USING count(*))",
        ["gold.g"],
    ),
    ("lambda", "SELECT list_transform([1, 2], x -> x + 1) AS l FROM gold.g", ["gold.g"]),
]


@pytest.mark.parametrize(("what", "sql", "reads"), IN_SCOPE, ids=[w for w, _, _ in IN_SCOPE])
def test_a_name_in_its_scope_still_works(
    what: str, sql: str, reads: list[str], record: Record
) -> None:
    record(f"guard accepts: {what}", "accepted, reports the lake tables it reads")
    assert [f"{layer}.{t}" for layer, t in check_query(sql).tables] == reads


def test_only_the_query_layers_exist(record: Record) -> None:
    record("guard with layers silver, gold: bronze.x", "refused; silver.x accepted")
    with pytest.raises(TableNotAllowed):
        check_query("SELECT * FROM bronze.x", ("silver", "gold"))
    assert check_query("SELECT * FROM silver.x", ("silver", "gold")).tables == (("silver", "x"),)


def test_show_of_the_database_is_refused(record: Record) -> None:
    record("guard: SHOW TABLES / SHOW ALL TABLES", "refused: they list the instance")
    for sql in ("SHOW TABLES", "SHOW ALL TABLES"):
        with pytest.raises(QueryError) as err:
            check_query(sql)
        assert err.value.title == "This statement is not allowed"


DEEP = {
    "2,000 nested parentheses of subqueries": "SELECT * FROM "
    + "(SELECT * FROM " * 2000
    + "gold.g"
    + ")" * 2000,
    "2,000 nested scalar subqueries": "SELECT " + "(SELECT " * 2000 + "1" + ")" * 2000,
    "200 nested scalar subqueries": "SELECT " + "(SELECT " * 200 + "1" + ")" * 200,
    # Below the parser's limit, but too deep for a recursive walk or json.loads (RecursionError).
    "300 nested scalar subqueries": "SELECT " + "(SELECT " * 300 + "1" + ")" * 300,
    "500 chained additions": "SELECT " + " + ".join(["1"] * 500),
    "20,000 nested parentheses": "SELECT " + "(" * 20_000 + "1" + ")" * 20_000,
    "2,000 nested NOTs": "SELECT " + "NOT " * 2000 + "true",
}


@pytest.mark.parametrize("what", list(DEEP))
def test_deep_nesting_is_a_query_error_not_a_crash(what: str, record: Record) -> None:
    record(
        f"finding 12: {what}",
        "QueryError 'Query too deeply nested' saying the limit; no RecursionError",
        figures=f"tree depth limit {MAX_TREE_DEPTH}",
    )
    with pytest.raises(QueryError) as err:
        check_query(DEEP[what])
    assert err.value.title == "Query too deeply nested"
    assert "limit" in err.value.msg or str(MAX_TREE_DEPTH) in err.value.msg


def test_moderate_nesting_still_passes(record: Record) -> None:
    record("guard: 60 nested subqueries over gold.g", "accepted with its table")
    sql = "SELECT * FROM " + "(SELECT * FROM " * 60 + "gold.g" + ")" * 60
    assert check_query(sql).tables == (("gold", "g"),)


def test_a_very_long_query_is_refused_before_parsing(record: Record) -> None:
    record("guard: 100,000 ANDs (~0.9 MB of SQL)", "refused as 'Query too long' at once")
    with pytest.raises(QueryError) as err:
        check_query("SELECT 1 WHERE " + " AND ".join(["true"] * 100_000))
    assert err.value.title == "Query too long"


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lakehouse]:
    with Lakehouse(Settings(**lake_dirs(tmp_path))) as lk:  # type: ignore[arg-type]
        lk.ingest(io.BytesIO(b"id,amount\n1,10\n"), dataset="orders", filename="o.csv")
        yield lk


@pytest.mark.slow
def test_the_playground_refuses_them_and_keeps_working(
    lake: Lakehouse, tmp_path: Path, record: Record
) -> None:
    """Through the real engine: the trick with a real file, system views, a deep query."""
    secret = tmp_path / "secret.csv"
    secret.write_text("token\nhunter2-host-secret\n")
    record(
        "playground: finding 1 on a real host file, system.main.duckdb_views, 2,000 nested "
        "scalar subqueries",
        "each a QueryError with a title; the next query still answers",
    )
    for sql, title in [
        (FINDING_1.replace(FILE, str(secret)), "Table not allowed"),
        (DEEP["2,000 nested scalar subqueries"], "Query too deeply nested"),
        (
            "SELECT * FROM system.main.duckdb_views "
            "WHERE EXISTS (WITH duckdb_views AS (SELECT 1) SELECT 1 FROM duckdb_views)",
            "Table not allowed",
        ),
    ]:
        with pytest.raises(QueryError) as err:
            lake.query(sql)
        assert err.value.title == title
    assert lake.query("SELECT sum(amount) AS s FROM bronze.orders").table.to_pylist() == [{"s": 10}]
