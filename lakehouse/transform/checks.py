"""Data checks as plain functions over a DuckDB relation: silver keys and gold model checks."""

import re
from dataclasses import dataclass

import duckdb

from lakehouse.errors import ConfigError, QueryError
from lakehouse.layers import quote_ident

# Offending values shown with a failed check: enough to recognise the problem.
_SAMPLE = 5


@dataclass(frozen=True)
class DataCheckResult:
    """What one data check found: passed or not, how many offending values, a sample."""

    name: str  # e.g. `unique(order_id)`
    passed: bool
    failures: int  # offending key values or rows
    description: str
    sample: list[str]


def unique(con: duckdb.DuckDBPyConnection, relation: str, cols: tuple[str, ...]) -> DataCheckResult:
    """No two rows share the same values in `cols`."""
    keys = ", ".join(quote_ident(c) for c in cols)
    name = f"unique({', '.join(cols)})"
    rows = _run(
        con,
        name,
        f"SELECT {keys}, count(*) AS n FROM {relation} GROUP BY ALL HAVING count(*) > 1 "
        f"ORDER BY n DESC",
    )
    sample = [f"{_fmt(r[:-1])} ×{r[-1]}" for r in rows[:_SAMPLE]]
    return DataCheckResult(
        name,
        not rows,
        len(rows),
        f"{len(rows)} value(s) of ({', '.join(cols)}) occur more than once"
        if rows
        else f"every ({', '.join(cols)}) is unique",
        sample,
    )


def not_null(
    con: duckdb.DuckDBPyConnection, relation: str, cols: tuple[str, ...]
) -> DataCheckResult:
    """No row has a NULL in any of `cols`."""
    cond = " OR ".join(f"{quote_ident(c)} IS NULL" for c in cols)
    name = f"not_null({', '.join(cols)})"
    n = _count(con, name, f"SELECT count(*) FROM {relation} WHERE {cond}")
    return DataCheckResult(
        name,
        n == 0,
        n,
        f"{n} row(s) have no {' / '.join(cols)}" if n else f"{', '.join(cols)} never NULL",
        [],
    )


def min_rows(con: duckdb.DuckDBPyConnection, relation: str, minimum: int) -> DataCheckResult:
    """The table has at least `minimum` rows."""
    name = f"min_rows({minimum})"
    n = _count(con, name, f"SELECT count(*) FROM {relation}")
    return DataCheckResult(
        name,
        n >= minimum,
        max(0, minimum - n),
        f"{n} row(s), at least {minimum} expected",
        [],
    )


_CHECK_RE = re.compile(r"^(unique|not_null|min_rows)\s*\(\s*([^()]*?)\s*\)$")


@dataclass(frozen=True)
class DataCheck:
    """A declared data check, as written in a model header: `unique(a, b)`, `not_null(a)`,
    `min_rows(1)`."""

    kind: str
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.kind}({', '.join(self.args)})"

    @classmethod
    def parse(cls, text: str) -> "DataCheck":
        m = _CHECK_RE.match(text.strip())
        args = tuple(a.strip() for a in m.group(2).split(",") if a.strip()) if m else ()
        if not m or not args or (m.group(1) == "min_rows" and not _is_count(args)):
            raise ConfigError(
                f"Unknown check {text.strip()!r}: use unique(col, ...), not_null(col, ...) "
                "or min_rows(n).",
                title="Invalid check",
            )
        return cls(m.group(1), args)

    def run(self, con: duckdb.DuckDBPyConnection, relation: str) -> DataCheckResult:
        if self.kind == "min_rows":
            return min_rows(con, relation, int(self.args[0]))
        return (
            unique(con, relation, self.args)
            if self.kind == "unique"
            else not_null(con, relation, self.args)
        )


def _is_count(args: tuple[str, ...]) -> bool:
    return len(args) == 1 and args[0].isdigit()


def _run(con: duckdb.DuckDBPyConnection, name: str, sql: str) -> list[tuple[object, ...]]:
    try:
        return con.execute(sql).fetchall()
    except duckdb.Error as e:
        raise QueryError(str(e), title=f"Check {name} could not run") from e


def _count(con: duckdb.DuckDBPyConnection, name: str, sql: str) -> int:
    value = _run(con, name, sql)[0][0]
    assert isinstance(value, int)
    return value


def _fmt(values: tuple[object, ...]) -> str:
    return ", ".join("NULL" if v is None else str(v) for v in values)
