"""A fuzz of the statement guard: generated nestings either refused or reading only the lake.

The generator builds queries from WITH clauses (plain, recursive, shadowing), subqueries in
FROM / EXISTS / IN / scalar position, lateral joins, UNION / INTERSECT / EXCEPT, lambdas and
table functions. Every leaf is a lake table, a WITH name the generator knows to be in scope
(DuckDB's rules: earlier entries of the same WITH, enclosing queries, a recursive CTE's own
name only in its recursive part), or something else: a WITH name out of its scope, a file
path or URL (string or quoted identifier), a file-reading table function, a catalog- or
schema-qualified name. Properties, for every generated query:

- if any leaf is something else, the guard refuses it;
- if every leaf is a lake table or an in-scope WITH name, the guard accepts it and reports
  exactly the lake tables the generator used;
- an accepted query, run on a real DuckDB with the lake's schemas as views, succeeds (or fails
  with an ordinary binder error) and never returns the canary value that every file, every
  table outside the lake (named like the WITH names, in `main`) and every URL would yield.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakehouse import QueryError
from lakehouse.query.guard import check_query
from tests.report import Record

CANARY = 987_654_321  # in every file and non-lake table; lake values stay below 1,000
NAMES = ("c0", "c1", "c2", "c3")  # WITH names; main.<name> holds the canary
LAKE = ("silver.t", "gold.g")
EXAMPLES = 300


@dataclass
class Built:
    sql: str
    reads: set[str] = field(default_factory=set)  # lake tables the query names
    unsafe: list[str] = field(default_factory=list)  # leaves that are not the lake or in scope


Draw = Callable[[st.SearchStrategy[Any]], Any]


class Gen:
    """Random SQL over one integer column `a`, knowing which names are in scope where."""

    def __init__(self, draw: Draw, canary_csv: Path) -> None:
        self.draw = draw
        self.csv = str(canary_csv)

    def pick(self, options: list[Any]) -> Any:
        return self.draw(st.sampled_from(options))

    # -- leaves: relations with a column `a` --------------------------------------------
    def leaf(self, scope: frozenset[str], out: Built) -> str:
        kinds = ["lake", "lake", "range"]
        if scope:
            kinds += ["cte", "cte", "cte"]
        if set(NAMES) - scope:
            kinds.append("out_of_scope")
        kinds += ["path", "quoted_path", "url", "file_function", "qualified"]
        kind = self.pick(kinds)
        if kind == "lake":
            table = str(self.pick(list(LAKE)))
            out.reads.add(table)
            return table
        if kind == "range":
            return "(SELECT range AS a FROM range(2))"
        if kind == "cte":
            return str(self.pick(sorted(scope)))
        out.unsafe.append(kind)
        if kind == "out_of_scope":
            return str(self.pick(sorted(set(NAMES) - scope)))
        if kind == "path":
            return f"'{self.csv}'"
        if kind == "quoted_path":
            return f'"{self.csv}"'
        if kind == "url":
            return "'http://127.0.0.1:9/x.csv'"
        if kind == "file_function":
            fn = self.pick(["read_csv", "read_csv_auto", "read_parquet", "read_json_auto"])
            return f"{fn}('{self.csv}')"
        return str(
            self.pick(
                [
                    "memory.main.c0",
                    "main.c1",
                    "temp.main.c2",
                    "system.main.duckdb_views",
                    "lake.gold.g",
                    "information_schema.tables",
                    f'memory.main."{self.csv}"',
                ]
            )
        )

    # -- queries: SELECT ... producing one INTEGER column `a` -----------------------------
    def query(self, scope: frozenset[str], depth: int, out: Built) -> str:
        shapes = ["from"]
        if depth > 0:
            shapes += ["with", "with", "recursive", "subquery", "lateral", "setop", "exists"]
            shapes += ["in", "scalar", "table_function", "unnest"]
        shapes.append("lambda")
        shape = self.pick(shapes)
        sub = depth - 1
        if shape == "from":
            return f"SELECT a FROM {self.leaf(scope, out)}"
        if shape == "lambda":
            return (
                "SELECT list_sum(list_transform([a], x -> x + 1)) - 1 AS a "
                f"FROM {self.leaf(scope, out)} WHERE len(list_filter([a], y -> y > 0)) >= 0"
            )
        if shape == "with":
            return self.with_clause(scope, sub, out)
        if shape == "recursive":
            return self.recursive(scope, sub, out)
        if shape == "subquery":
            return f"SELECT a FROM ({self.query(scope, sub, out)}) s"
        if shape == "lateral":
            left = self.query(scope, sub, out)
            right = self.query(scope, sub, out)
            return f"SELECT s.a AS a FROM ({left}) s, LATERAL ({right}) l"
        if shape == "setop":
            op = self.pick(["UNION ALL", "UNION", "INTERSECT", "EXCEPT"])
            return f"({self.query(scope, sub, out)}) {op} ({self.query(scope, sub, out)})"
        if shape == "exists":
            inner = self.query(scope, sub, out)
            return f"SELECT a FROM {self.leaf(scope, out)} WHERE EXISTS ({inner})"
        if shape == "in":
            inner = self.query(scope, sub, out)
            return f"SELECT a FROM {self.leaf(scope, out)} WHERE a IN ({inner})"
        if shape == "scalar":
            inner = self.query(scope, sub, out)
            return f"SELECT (SELECT max(a) FROM ({inner}) z) AS a FROM {self.leaf(scope, out)}"
        if shape == "table_function":
            inner = self.query(scope, sub, out)
            fn = self.pick(["range", "generate_series"])
            return (
                f"SELECT CAST({fn} AS INTEGER) AS a FROM {fn}((SELECT count(*) FROM ({inner}) z))"
            )
        inner = self.query(scope, sub, out)
        return f"SELECT unnest AS a FROM unnest((SELECT list(a) FROM ({inner}) z))"

    def with_clause(self, scope: frozenset[str], depth: int, out: Built) -> str:
        count = self.draw(st.integers(1, 3))
        names = self.draw(st.permutations(NAMES))[:count]
        parts, seen = [], scope
        for name in names:
            parts.append(f"{self.cte_name(name, out)} AS ({self.query(seen, depth, out)})")
            seen = seen | {name}  # later entries see it, its own body does not
        materialized = self.pick(["", "MATERIALIZED ", "NOT MATERIALIZED "])
        if materialized:
            head, body = parts[0].split(" AS ", 1)
            parts[0] = f"{head} AS {materialized}{body}"
        return f"WITH {', '.join(parts)} {self.query(seen, depth, out)}"

    def recursive(self, scope: frozenset[str], depth: int, out: Built) -> str:
        name = self.pick(list(NAMES))
        # The anchor does not see the CTE's own name: DuckDB binds it to an outer table there.
        anchor_scope = scope - {name}
        if self.draw(st.booleans()) and name not in scope:
            anchor = f"SELECT a FROM {name}"  # looks recursive, reads main.<name>
            out.unsafe.append("recursive anchor reads its own name")
        else:
            anchor = self.query(anchor_scope, depth, out)
        step = f"SELECT {name}.a + 1 AS a FROM {name} WHERE {name}.a < 3"
        if self.draw(st.booleans()):
            extra = self.query(scope | {name}, depth, out)
            step = f"SELECT {name}.a + 1 AS a FROM {name}, ({extra}) j WHERE {name}.a < 3"
        rest = self.query(scope | {name}, depth, out)
        return f"WITH RECURSIVE {self.cte_name(name, out)} AS ({anchor} UNION ALL {step}) {rest}"

    def cte_name(self, name: str, out: Built) -> str:
        """Mostly the plain name; sometimes a path-like spelling that must be refused."""
        if self.draw(st.integers(0, 9)) == 0:
            out.unsafe.append("path-like WITH name")
            return f'"{name}.csv"'
        return name


def lake_connection(tmp: Path) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """The lake's schemas as views over tiny tables, and the canary wherever else one looks."""
    canary_csv = tmp / "canary.csv"
    canary_csv.write_text(f"a\n{CANARY}\n")
    for name in NAMES:
        (tmp / f"{name}.csv").write_text(f"a\n{CANARY}\n")
    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    con.execute(f"SET file_search_path = '{tmp}'")
    con.execute("CREATE SCHEMA data; CREATE SCHEMA silver; CREATE SCHEMA gold")
    con.execute("CREATE TABLE data.t AS SELECT * FROM (VALUES (1), (2)) v(a)")
    con.execute("CREATE TABLE data.g AS SELECT * FROM (VALUES (2), (3)) v(a)")
    con.execute("CREATE VIEW silver.t AS SELECT a FROM data.t")
    con.execute("CREATE VIEW gold.g AS SELECT a FROM data.g")
    for name in NAMES:
        con.execute(f"CREATE TABLE main.{name} AS SELECT {CANARY} AS a")
        con.execute(f'CREATE TABLE main."{name}.csv" AS SELECT {CANARY} AS a')
    con.execute(f'CREATE TABLE main."{canary_csv}" AS SELECT {CANARY} AS a')
    return con, canary_csv


def _values(rows: list[tuple[Any, ...]]) -> list[Any]:
    return [v for row in rows for v in row]


@pytest.mark.slow
def test_the_guard_refuses_or_reads_only_the_lake(tmp_path: Path, record: Record) -> None:
    con, canary_csv = lake_connection(tmp_path)
    tally = {"accepted": 0, "refused": 0, "ran": 0, "binder errors": 0}

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def check(data: st.DataObject) -> None:
        out = Built("")
        gen = Gen(data.draw, canary_csv)
        out.sql = gen.query(frozenset(), data.draw(st.integers(1, 3)), out)
        try:
            checked = check_query(out.sql, ("silver", "gold"))
        except QueryError as e:
            tally["refused"] += 1
            assert out.unsafe, f"refused a query that reads only the lake ({e}):\n{out.sql}"
            return
        tally["accepted"] += 1
        assert not out.unsafe, f"accepted a query reading {out.unsafe}:\n{out.sql}"
        assert {f"{layer}.{t}" for layer, t in checked.tables} == out.reads, out.sql
        try:
            rows = con.execute(checked.sql).fetchall()
        except duckdb.BinderException:
            tally["binder errors"] += 1
            return
        tally["ran"] += 1
        assert all(v is None or abs(v) < CANARY // 10 for v in _values(rows)), out.sql

    check()
    record(
        f"guard fuzz: {EXAMPLES} generated nestings of WITH (plain, recursive, shadowed, "
        "path-named), subqueries, lateral joins, set operations, lambdas and table "
        "functions over lake tables, in/out-of-scope names, paths, URLs, file functions, "
        "qualified names",
        "every query with a non-lake leaf refused; every lake-only query accepted with its "
        "exact tables, ran on DuckDB and never returned the canary",
        figures=", ".join(f"{k} {v}" for k, v in tally.items()),
    )
    assert tally["accepted"] >= EXAMPLES // 10 and tally["refused"] >= EXAMPLES // 10, tally
