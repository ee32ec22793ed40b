"""Charts that aggregate in DuckDB: a user query plus a spec becomes at most 5,000 marks.

Vega-Lite (Altair) refuses more than 5,000 rows and a browser chokes long before a million, so
the query is wrapped as a subquery and grouped by time grain, bins or categories; colors past
the top N merge into "other"; a scatter too big to draw becomes a binned heatmap. What was
merged or cut is said in `notes`, never silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal, get_args

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.errors import QueryError
from lakehouse.layers import quote_ident

if TYPE_CHECKING:
    from lakehouse.query.engine import QueryEngine
    from lakehouse.query.results import QueryResult

Mark = Literal["bar", "line", "area", "point", "heatmap", "histogram"]
Aggregate = Literal["count", "sum", "avg", "min", "max", "median", "count_distinct"]
Grain = Literal["second", "minute", "hour", "day", "week", "month", "quarter", "year"]
Kind = Literal["temporal", "quantitative", "nominal"]
MARKS: tuple[Mark, ...] = get_args(Mark)
AGGREGATES: tuple[Aggregate, ...] = get_args(Aggregate)
MAX_MARKS = 5_000
HEATMAP_BINS = 50
GRAINS: dict[Grain, float] = {
    "second": 1,
    "minute": 60,
    "hour": 3_600,
    "day": 86_400,
    "week": 7 * 86_400,
    "month": 30.44 * 86_400,
    "quarter": 91.3 * 86_400,
    "year": 365.25 * 86_400,
}
_NUMERIC = re.compile(r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|REAL|DECIMAL.*)$")
_TEMPORAL = re.compile(r"^(DATE|TIMESTAMP.*)$")
_KEYLIKE = re.compile(r"(^|_)(id|key|code|zip|phone)$|(id|key)$", re.IGNORECASE)


def kind_of(duckdb_type: str) -> Kind:
    if _TEMPORAL.match(duckdb_type):
        return "temporal"
    if _NUMERIC.match(duckdb_type):
        return "quantitative"
    return "nominal"


@dataclass(frozen=True)
class ChartSpec:
    """What to draw. `y` is the measure (not needed for count, histogram or heatmap)."""

    mark: Mark
    x: str
    y: str | None = None
    aggregate: Aggregate = "sum"
    color: str | None = None
    time_grain: Grain | Literal["auto"] = "auto"  # for a temporal x
    bins: int | None = None  # for a numeric x: histograms default to 30, heatmaps to 50
    top_n: int = 10  # color groups drawn; the rest merge into "other"

    def __post_init__(self) -> None:
        if self.mark not in MARKS:
            raise QueryError(f"Unknown chart {self.mark!r}; pick one of {', '.join(MARKS)}.")
        if self.aggregate not in AGGREGATES:
            raise QueryError(f"Unknown aggregate {self.aggregate!r}.", title="Cannot draw this")
        if self.time_grain != "auto" and self.time_grain not in GRAINS:
            raise QueryError(f"Unknown time grain {self.time_grain!r}.", title="Cannot draw this")
        if not 1 <= self.top_n <= 100 or (self.bins is not None and not 1 <= self.bins <= 1000):
            raise QueryError("top_n must be 1-100 and bins 1-1000.", title="Cannot draw this")


@dataclass(frozen=True)
class ChartData:
    """Aggregated rows ready to draw: columns `x` (and `x_end` for bins), `y`, `color`."""

    spec: ChartSpec  # as drawn: the mark may differ from the request (see notes)
    table: pa.Table
    x_kind: Kind
    x_title: str
    y_title: str
    y_kind: Kind = "quantitative"
    notes: list[str] = field(default_factory=list)
    sql: str = ""


def chart(engine: QueryEngine, sql: str, spec: ChartSpec) -> ChartData:
    """Aggregate `sql` for `spec` in DuckDB (through the untrusted path, like the query)."""
    sql = sql.strip().rstrip(";")
    kinds = {n: kind_of(t) for n, t in engine.query(f"SELECT * FROM ({sql}) LIMIT 0").columns}
    _validate(spec, kinds)
    return _Builder(engine, sql, spec, kinds).build()


def _validate(spec: ChartSpec, kinds: dict[str, Kind]) -> None:
    for role, col in (("x", spec.x), ("y", spec.y), ("color", spec.color)):
        if col is not None and col not in kinds:
            raise QueryError(
                f"The query has no column {col!r} for {role}; it has {', '.join(kinds)}.",
                title="Unknown chart column",
            )
    if spec.mark in ("histogram", "heatmap"):
        return
    needs_measure = spec.aggregate not in ("count", "count_distinct") or spec.mark == "point"
    if needs_measure and spec.y is None:
        raise QueryError(
            f"A {spec.mark} chart of {spec.aggregate} needs a y column.", title="Incomplete chart"
        )
    if spec.y and spec.aggregate in ("sum", "avg", "median") and kinds[spec.y] != "quantitative":
        raise QueryError(
            f"{spec.aggregate} needs a numeric column; {spec.y!r} is {kinds[spec.y]}. "
            "Use count or count_distinct.",
            title="Cannot aggregate this column",
        )
    if spec.mark == "point" and kinds[spec.x] == "nominal":
        raise QueryError("A scatter plot needs a numeric or time x.", title="Cannot draw this")


def _measure(spec: ChartSpec) -> tuple[str, str]:
    """SQL aggregate and its title."""
    if spec.aggregate == "count" or spec.y is None:
        return "count(*)", "count"
    y = quote_ident(spec.y)
    if spec.aggregate == "count_distinct":
        return f"count(DISTINCT {y})", f"distinct {spec.y}"
    return f"{spec.aggregate}({y})", f"{spec.aggregate}({spec.y})"


class _Builder:
    def __init__(
        self, engine: QueryEngine, sql: str, spec: ChartSpec, kinds: dict[str, Kind]
    ) -> None:
        self.engine, self.sql, self.spec, self.kinds = engine, sql, spec, kinds
        self.notes: list[str] = []

    def _one(self, select: str) -> dict[str, object]:
        rows = self.engine.query(f"WITH _q AS ({self.sql}) SELECT {select} FROM _q").table
        first: dict[str, object] = rows.to_pylist()[0]
        return first

    def build(self) -> ChartData:
        spec = self.spec
        if spec.mark == "point":
            return self._scatter()
        if spec.mark == "heatmap":
            return self._heatmap(spec)
        if spec.mark == "histogram":
            spec = replace(spec, aggregate="count", y=None)
        measure, y_title = _measure(spec)
        colors = self._colors(spec, y_title)
        slots = max(1, MAX_MARKS // max(1, colors))
        x_sql, x_end, x_kind = self._axis(spec.x, spec, slots, histogram=spec.mark == "histogram")
        group = ["x"] + (["x_end"] if x_end else []) + (["color"] if spec.color else [])
        select = [f"{x_sql} AS x"] + ([f"{x_end} AS x_end"] if x_end else [])
        if spec.color:
            select.append(f"{self._color_sql(spec, measure)} AS color")
        body = f"SELECT {', '.join(select)}, {measure} AS y FROM _q GROUP BY {', '.join(group)}"
        keep = self._top_x(slots, spec.x) if x_kind == "nominal" else ""
        final = f"WITH _q AS ({self.sql}), _a AS ({body}) SELECT * FROM _a{keep} ORDER BY x"
        table = self.engine.query(final, max_rows=MAX_MARKS).table
        return ChartData(
            spec, table, x_kind, self._x_title(spec), y_title, notes=self.notes, sql=final
        )

    def _x_title(self, spec: ChartSpec) -> str:
        return spec.x if spec.mark != "histogram" else f"{spec.x} (binned)"

    # -- color ----------------------------------------------------------------------------
    def _colors(self, spec: ChartSpec, y_title: str) -> int:
        if not spec.color:
            return 1
        c = quote_ident(spec.color)
        n = int(str(self._one(f"approx_count_distinct({c}) AS n")["n"]))
        if n > spec.top_n:
            self.notes.append(
                f"{spec.color}: the top {spec.top_n} of about {n:,} values by {y_title}; "
                'the rest are merged into "other".'
            )
            return spec.top_n + 1
        return max(n, 1)

    def _color_sql(self, spec: ChartSpec, measure: str) -> str:
        assert spec.color is not None
        c = quote_ident(spec.color)
        top = (
            f"SELECT {c} FROM _q GROUP BY {c} ORDER BY {measure} DESC NULLS LAST, {c} "
            f"LIMIT {int(spec.top_n)}"
        )
        return f"CASE WHEN {c} IN ({top}) THEN CAST({c} AS VARCHAR) ELSE 'other' END"

    # -- x axis ---------------------------------------------------------------------------
    def _axis(
        self, col: str, spec: ChartSpec, slots: int, *, histogram: bool = False
    ) -> tuple[str, str | None, Kind]:
        """SQL for the axis value (and bin end); temporal axes get a grain, numeric ones bins."""
        kind = self.kinds[col]
        c = quote_ident(col)
        if kind == "temporal":
            return f"date_trunc('{self._grain(col, spec, slots)}', {c})", None, kind
        if kind == "quantitative" and (histogram or spec.bins):
            bins = min(spec.bins or 30, slots)
            return (*self._bins(col, bins), kind)
        if kind == "quantitative" and spec.mark in ("line", "area", "bar"):
            n = int(str(self._one(f"approx_count_distinct({c}) AS n")["n"]))
            if n > slots:
                self.notes.append(
                    f"{col}: about {n:,} distinct values, grouped into {slots:,} bins."
                )
                return (*self._bins(col, slots), kind)
        return c, None, kind

    def _grain(self, col: str, spec: ChartSpec, slots: int) -> Grain:
        c = quote_ident(col)
        stats = self._one(f"min({c}) AS lo, max({c}) AS hi")
        span = _seconds(stats["lo"], stats["hi"])
        fitting = [g for g, secs in GRAINS.items() if span / secs < slots]
        best: Grain = fitting[0] if fitting else "year"
        if spec.time_grain == "auto":
            return best
        if GRAINS[spec.time_grain] < GRAINS[best]:
            self.notes.append(
                f"{col}: by {spec.time_grain} would draw more than {slots:,} marks; "
                f"shown by {best}."
            )
            return best
        return spec.time_grain

    def _bins(self, col: str, bins: int) -> tuple[str, str]:
        c = quote_ident(col)
        stats = self._one(f"min({c})::DOUBLE AS lo, max({c})::DOUBLE AS hi")
        lo, hi = stats["lo"], stats["hi"]
        if not (isinstance(lo, float) and isinstance(hi, float)):  # no rows, or all NULL
            return "NULL::DOUBLE", "NULL::DOUBLE"
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise QueryError(
                f"{col} holds infinite values; filter them out to bin it.", title="Cannot bin"
            )
        width = (hi - lo) / bins if hi > lo else 1.0
        start = f"({lo!r} + {width!r} * least(floor(({c} - {lo!r}) / {width!r}), {bins - 1}))"
        return start, f"({start} + {width!r})"

    def _top_x(self, slots: int, col: str) -> str:
        """A WHERE keeping the x values with the largest totals, when there are too many."""
        n = int(str(self._one(f"approx_count_distinct({quote_ident(col)}) AS n")["n"]))
        if n <= slots:
            return ""
        self.notes.append(f"{col}: the top {slots:,} of about {n:,} values by the measure.")
        return (
            " WHERE x IN (SELECT x FROM _a GROUP BY x ORDER BY sum(y) DESC NULLS LAST "
            f"LIMIT {slots})"
        )

    # -- scatter and heatmap --------------------------------------------------------------
    def _scatter(self) -> ChartData:
        spec = self.spec
        assert spec.y is not None
        total = int(str(self._one("count(*) AS n")["n"]))
        if total > MAX_MARKS:
            self.notes.append(
                f"{total:,} points are too many to draw one by one: shown as a "
                f"{HEATMAP_BINS}×{HEATMAP_BINS} heatmap of counts."
            )
            return self._heatmap(replace(spec, mark="heatmap", aggregate="count", color=None))
        cols = [f"{quote_ident(spec.x)} AS x", f"{quote_ident(spec.y)} AS y"]
        if spec.color:
            cols.append(f"CAST({quote_ident(spec.color)} AS VARCHAR) AS color")
        final = f"WITH _q AS ({self.sql}) SELECT {', '.join(cols)} FROM _q"
        table = self.engine.query(final, max_rows=MAX_MARKS).table
        return ChartData(
            spec,
            table,
            self.kinds[spec.x],
            spec.x,
            spec.y,
            y_kind=self.kinds[spec.y],
            notes=self.notes,
            sql=final,
        )

    def _heatmap(self, spec: ChartSpec) -> ChartData:
        """Counts over an x × y grid: each axis binned, by grain, or its top categories."""
        if spec.y is None:
            raise QueryError("A heatmap needs an x and a y column.", title="Incomplete chart")
        side = spec.bins or HEATMAP_BINS
        hm = replace(spec, bins=side, mark="heatmap")
        x_sql, _, x_kind = self._axis(spec.x, hm, side, histogram=True)
        y_sql, _, y_kind = self._axis(spec.y, hm, side, histogram=True)
        where = []
        for col, kind in ((spec.x, x_kind), (spec.y, y_kind)):
            if kind == "nominal":
                c = quote_ident(col)
                where.append(
                    f"{c} IN (SELECT {c} FROM _q GROUP BY {c} ORDER BY count(*) DESC LIMIT {side})"
                )
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        final = (
            f"WITH _q AS ({self.sql}) SELECT {x_sql} AS x, {y_sql} AS y, count(*) AS value "
            f"FROM _q{cond} GROUP BY ALL ORDER BY x, y"
        )
        table = self.engine.query(final, max_rows=MAX_MARKS).table
        return ChartData(
            hm, table, x_kind, spec.x, spec.y, y_kind=y_kind, notes=self.notes, sql=final
        )


def _seconds(lo: object, hi: object) -> float:
    if isinstance(lo, datetime) and isinstance(hi, datetime):
        return (hi - lo).total_seconds()
    if isinstance(lo, date) and isinstance(hi, date):
        return (hi - lo) / timedelta(seconds=1)
    return 0.0


# -- suggestions -------------------------------------------------------------------------
def suggest_chart(result: QueryResult) -> ChartSpec | None:
    """A first chart for a result, from column types and (preview) cardinality."""
    kinds = {n: kind_of(t) for n, t in result.columns}
    distinct = {
        n: pc.count_distinct(result.table.column(n)).as_py() for n in result.table.column_names
    }
    temporal = [n for n, k in kinds.items() if k == "temporal"]
    numeric = [n for n, k in kinds.items() if k == "quantitative"]
    measures = [n for n in numeric if not _KEYLIKE.search(n)] or numeric
    categories = [n for n, k in kinds.items() if k == "nominal" and distinct.get(n, 0) > 0]
    low_card = [n for n in categories if 1 < distinct[n] <= 10]
    color = low_card[0] if low_card else None
    if temporal and measures:
        return ChartSpec("line", temporal[0], measures[0], "sum", color=color)
    if categories and measures:
        x = min(categories, key=lambda n: distinct[n])
        return ChartSpec("bar", x, measures[0], "sum", color=next(iter(set(low_card) - {x}), None))
    if len(measures) >= 2:
        return ChartSpec("point", measures[0], measures[1], color=color)
    if measures:
        return ChartSpec("histogram", measures[0])
    if temporal:
        return ChartSpec("line", temporal[0], aggregate="count", color=color)
    if categories:
        return ChartSpec("bar", min(categories, key=lambda n: distinct[n]), aggregate="count")
    return None


__all__ = ["MAX_MARKS", "ChartData", "ChartSpec", "chart", "kind_of", "suggest_chart"]
