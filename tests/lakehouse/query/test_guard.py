"""The statement guard: what untrusted SQL may and may not do, one case per escape route."""

import json
from typing import Any

import duckdb
import pytest

from lakehouse import QueryError
from lakehouse.query.guard import _walk_checks, check_query, iter_nodes


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM gold.sales",
        "select count(*) from silver.orders o join bronze.raw r on o.id = r.id;",
        "WITH t AS (SELECT * FROM gold.sales) SELECT region, sum(x) FROM t GROUP BY ALL",
        "SELECT * FROM range(10) r, unnest([1, 2]) u",
        "SELECT 1 UNION ALL SELECT 2",
        "SELECT (SELECT max(x) FROM gold.sales) AS m",
        'SELECT * FROM gold."Odd Name"',
    ],
)
def test_reads_of_the_lake_pass(sql: str) -> None:
    assert check_query(sql).sql == sql.strip().rstrip(";")


def test_explain_of_a_select_passes() -> None:
    assert check_query("EXPLAIN SELECT * FROM gold.sales").explain
    assert check_query("explain analyze SELECT 1").explain
    assert not check_query("SELECT 1").explain


# Each row is a way out of the sandbox seen in DuckDB 1.5.5 or a statement that writes.
REFUSED = [
    # local files and URLs, by function and by replacement scan
    ("SELECT * FROM read_csv('/etc/passwd')", "Function not allowed"),
    ("SELECT * FROM read_text('/etc/passwd')", "Function not allowed"),
    ("SELECT * FROM read_blob('/etc/shadow')", "Function not allowed"),
    ("SELECT * FROM glob('/etc/*')", "Function not allowed"),
    ("SELECT * FROM parquet_metadata('/etc/x.parquet')", "Function not allowed"),
    ("SELECT * FROM '/etc/passwd'", "Table not allowed"),
    ("SELECT * FROM 'https://example.com/x.csv'", "Table not allowed"),
    (
        "SELECT * FROM read_parquet('s3://gold/../bronze/x/data.parquet')",
        "Function not allowed",
    ),
    ("SELECT * FROM 's3://other-bucket/x.parquet'", "Table not allowed"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "Function not allowed"),
    # the instance: secrets, settings, logging, nested SQL
    ("SELECT * FROM duckdb_secrets()", "Function not allowed"),
    ("SELECT * FROM duckdb_settings()", "Function not allowed"),
    ("SELECT * FROM enable_logging(storage='file')", "Function not allowed"),
    ("SELECT enable_profiling()", "Function not allowed"),
    ("SELECT * FROM query('COPY (SELECT 1) TO ''/tmp/x''')", "Function not allowed"),
    ("SELECT * FROM query_table('gold.sales')", "Function not allowed"),
    ("SELECT json_execute_serialized_sql('{}')", "Function not allowed"),
    ("SELECT getenv('RATATOUILLE_S3_SECRET_KEY')", "Function not allowed"),
    ("SELECT current_setting('s3_secret_access_key')", "Function not allowed"),
    (
        "SELECT * FROM gold.sales WHERE x IN (SELECT * FROM query('SELECT 1'))",
        "Function not allowed",
    ),
    ("SELECT * FROM pragma_database_list()", "Function not allowed"),
    # other catalogs and unqualified names
    ("SELECT * FROM other.main.t", "Table not allowed"),
    ("SELECT * FROM main.t", "Table not allowed"),
    ("SELECT * FROM sales", "Table not allowed"),
    ("SELECT * FROM information_schema.tables", "Table not allowed"),
    # statements that are not a SELECT
    ("COPY (SELECT 1) TO '/tmp/x.csv'", "This statement is not allowed"),
    ("EXPORT DATABASE '/tmp/x'", "This statement is not allowed"),
    ("ATTACH '/tmp/x.db' AS x", "This statement is not allowed"),
    ("DETACH x", "This statement is not allowed"),
    ("INSTALL httpfs", "This statement is not allowed"),
    ("LOAD httpfs", "This statement is not allowed"),
    ("SET threads = 1", "This statement is not allowed"),
    ("RESET threads", "This statement is not allowed"),
    ("PRAGMA enable_profiling", "This statement is not allowed"),
    ("PRAGMA version", "Function not allowed"),  # DuckDB rewrites it to pragma_version()
    (
        "CREATE SECRET s (TYPE s3, ENDPOINT 'evil:9000', SCOPE 's3://gold')",
        "This statement is not allowed",
    ),
    ("DROP SECRET lake", "This statement is not allowed"),
    ("CREATE OR REPLACE VIEW gold.sales AS SELECT 1", "This statement is not allowed"),
    ("DROP VIEW gold.sales", "This statement is not allowed"),
    ("CREATE TABLE t AS SELECT 1", "This statement is not allowed"),
    ("INSERT INTO gold.sales VALUES (1)", "This statement is not allowed"),
    ("DELETE FROM gold.sales", "This statement is not allowed"),
    ("CHECKPOINT", "This statement is not allowed"),
    ("EXPLAIN COPY (SELECT 1) TO '/tmp/x'", "This statement is not allowed"),
    # more or less than one statement
    ("SELECT 1; DROP VIEW gold.sales", "Only one statement is allowed"),
    ("SELECT 1; SELECT 2", "Only one statement is allowed"),
    ("", "Nothing to run"),
    ("   ", "Nothing to run"),
    ("SELEC 1", "Syntax error"),
]


@pytest.mark.parametrize(("sql", "title"), REFUSED)
def test_everything_else_is_refused_with_a_reason(sql: str, title: str) -> None:
    with pytest.raises(QueryError) as err:
        check_query(sql)
    assert err.value.title == title
    assert err.value.msg


def test_a_checked_query_runs_on_the_lake(lake, tmp_path) -> None:
    src = tmp_path / "sales.csv"
    src.write_text("region,amount\nnorth,2\nsouth,3\nnorth,5\n")
    lake.ingest(src)
    q = check_query(
        "WITH s AS (SELECT * FROM BRONZE.sales) SELECT region, sum(amount) AS t "
        "FROM s GROUP BY region ORDER BY region"
    )
    assert lake.sql(q.sql).to_pylist() == [
        {"region": "north", "t": 7},
        {"region": "south", "t": 3},
    ]


def test_the_guard_reports_the_lake_tables_a_query_reads() -> None:
    q = check_query(
        "WITH s AS (SELECT * FROM Gold.Sales) SELECT * FROM s JOIN bronze.raw USING (id) "
        "WHERE id IN (SELECT id FROM silver.keep)"
    )
    assert q.tables == (("bronze", "raw"), ("gold", "sales"), ("silver", "keep"))


def _tree(sql: str) -> dict[str, Any]:
    con = duckdb.connect()
    row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    assert row is not None
    tree: dict[str, Any] = json.loads(row[0])
    return tree


@pytest.mark.parametrize(
    "change",
    [
        # A table reference or query node kind the walk does not know (a newer DuckDB's).
        lambda t: t["statements"][0]["node"]["from_table"].update(type="FUTURE_REF"),
        lambda t: t["statements"][0]["node"].update(type="FUTURE_NODE"),
        # A recursive node anywhere but as a WITH entry's body would see its own name.
        lambda t: t["statements"][0]["node"]["from_table"].update(
            type="SUBQUERY",
            subquery={"node": {"type": "RECURSIVE_CTE_NODE", "cte_name": "x", "left": {}}},
        ),
    ],
)
def test_what_the_walk_cannot_classify_is_refused(change: Any) -> None:
    tree = _tree("SELECT * FROM gold.sales")
    change(tree)
    with pytest.raises(QueryError) as err:
        _walk_checks(tree, ("gold",))
    assert err.value.title == "This query cannot be checked"


def test_iter_nodes_walks_deep_trees_without_recursion() -> None:
    deep: dict[str, Any] = {"type": "leaf"}
    for _ in range(5000):
        deep = {"child": [deep]}
    assert sum(1 for _ in iter_nodes(deep)) == 5001
