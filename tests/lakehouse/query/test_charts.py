"""Chart aggregation in DuckDB: answers checked against plain SQL, marks capped, notes honest."""

from collections.abc import Iterator

import pytest

from lakehouse import ChartSpec, Lakehouse, QueryError, Settings, suggest_chart
from lakehouse.query.charts import MAX_MARKS

SALES = """
SELECT TIMESTAMP '2024-01-01' + INTERVAL (range) MINUTE AS ts,
       'product' || (range % 37) AS product,
       'r' || (range % 4) AS region,
       (range % 100)::DOUBLE AS amount,
       (hash(range) % 1000)::BIGINT AS qty,
       range AS order_id
FROM range(200000)
"""
Q = "SELECT * FROM gold.sales"


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Iterator[Lakehouse]:
    tmp = tmp_path_factory.mktemp("charts")
    lake = Lakehouse(Settings(lake_root=tmp / "lake", state_dir=tmp / "state"))
    lake.publish("gold", "sales", SALES)
    yield lake
    lake.close()


def test_a_line_over_time_picks_a_grain_that_fits(lake) -> None:
    d = lake.chart(Q, ChartSpec("line", "ts", "amount"))
    # 200,000 minutes is ~139 days: hourly buckets (3,334) fit in 5,000 marks, minutes do not.
    assert d.table.num_rows == 3334 and d.x_kind == "temporal"
    assert d.table.column_names == ["x", "y"]
    expected = lake.sql(
        "SELECT sum(amount) AS s FROM gold.sales WHERE ts < TIMESTAMP '2024-01-01 01:00'"
    )
    assert d.table.column("y")[0].as_py() == expected.column("s")[0].as_py()
    assert d.y_title == "sum(amount)" and not d.notes

    fine = lake.chart(Q, ChartSpec("line", "ts", "amount", time_grain="minute"))
    assert fine.table.num_rows == 3334
    assert "by minute would draw more than 5,000 marks; shown by hour" in fine.notes[0]
    coarse = lake.chart(Q, ChartSpec("line", "ts", "amount", time_grain="month"))
    assert coarse.table.num_rows == 5 and not coarse.notes


def test_many_colors_become_top_n_and_other(lake) -> None:
    d = lake.chart(Q, ChartSpec("line", "ts", "amount", "sum", color="product", top_n=5))
    colors = set(d.table.column("color").to_pylist())
    assert len(colors) == 6 and "other" in colors
    assert d.table.num_rows <= MAX_MARKS
    assert 'the rest are merged into "other"' in d.notes[0]
    # Nothing is lost: the groups add up to the whole.
    total = sum(d.table.column("y").to_pylist())
    assert total == lake.sql("SELECT sum(amount) AS s FROM gold.sales").column("s")[0].as_py()


def test_bars_by_category_match_group_by(lake) -> None:
    d = lake.chart(Q, ChartSpec("bar", "region", "amount", "avg"))
    got = dict(zip(d.table.column("x").to_pylist(), d.table.column("y").to_pylist(), strict=True))
    want = lake.sql("SELECT region, avg(amount) AS a FROM gold.sales GROUP BY 1").to_pylist()
    assert got == {r["region"]: r["a"] for r in want}
    counts = lake.chart(Q, ChartSpec("bar", "region", aggregate="count"))
    assert sum(counts.table.column("y").to_pylist()) == 200000


def test_too_many_categories_keep_the_largest(lake) -> None:
    d = lake.chart(
        "SELECT order_id::VARCHAR AS k, amount FROM gold.sales", ChartSpec("bar", "k", "amount")
    )
    assert d.table.num_rows == MAX_MARKS
    ys = d.table.column("y").to_pylist()  # the biggest bars are kept: 2,000 each of 99 and 98
    assert (ys.count(99.0), ys.count(98.0), min(ys)) == (2000, 2000, 97.0)
    assert "the top 5,000 of about" in d.notes[0]


def test_histogram_bins_cover_every_row(lake) -> None:
    d = lake.chart(Q, ChartSpec("histogram", "amount", bins=10))
    assert d.table.num_rows == 10
    assert d.table.column_names == ["x", "x_end", "y"]
    assert sum(d.table.column("y").to_pylist()) == 200000
    assert d.table.column("x")[0].as_py() == 0.0
    assert d.table.column("x_end")[-1].as_py() == pytest.approx(99.0)


def test_a_big_scatter_becomes_a_heatmap(lake) -> None:
    d = lake.chart(Q, ChartSpec("point", "amount", "qty"))
    assert d.spec.mark == "heatmap" and d.table.column_names == ["x", "y", "value"]
    assert d.table.num_rows <= 50 * 50
    assert sum(d.table.column("value").to_pylist()) == 200000
    assert "heatmap" in d.notes[0]
    small = lake.chart(f"{Q} LIMIT 100", ChartSpec("point", "amount", "qty", color="region"))
    assert small.spec.mark == "point" and small.table.num_rows == 100 and not small.notes


def test_chart_input_errors_are_clear(lake) -> None:
    with pytest.raises(QueryError, match="no column 'nope'"):
        lake.chart(Q, ChartSpec("bar", "nope", "amount"))
    with pytest.raises(QueryError, match="needs a numeric column"):
        lake.chart(Q, ChartSpec("bar", "region", "product", "sum"))
    with pytest.raises(QueryError, match="needs a y column"):
        lake.chart(Q, ChartSpec("line", "ts", aggregate="avg"))
    with pytest.raises(QueryError, match="Unknown chart 'pie'"):
        ChartSpec("pie", "region")  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="top_n"):
        ChartSpec("bar", "region", top_n=0)
    with pytest.raises(QueryError, match="not allowed"):  # the wrapped query is guarded too
        lake.chart("SELECT * FROM read_csv('/etc/passwd')", ChartSpec("bar", "a"))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (Q, ChartSpec("line", "ts", "amount", "sum", color="region")),
        ("SELECT product, region, amount FROM gold.sales", ChartSpec("bar", "region", "amount")),
        ("SELECT order_id, amount, qty FROM gold.sales", ChartSpec("point", "amount", "qty")),
        ("SELECT amount FROM gold.sales", ChartSpec("histogram", "amount")),
        ("SELECT ts FROM gold.sales", ChartSpec("line", "ts", aggregate="count")),
        ("SELECT product FROM gold.sales", ChartSpec("bar", "product", aggregate="count")),
    ],
)
def test_suggestions_follow_column_types(lake, sql: str, expected: ChartSpec) -> None:
    assert suggest_chart(lake.query(sql)) == expected
