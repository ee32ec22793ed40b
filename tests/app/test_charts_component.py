"""ChartData → Altair on real aggregates from a small lake; spec dicts; PNG/SVG export."""

import csv
import json
import os
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pytest

from lakehouse import ChartData, ChartSpec, Lakehouse, QueryError, Settings
from lakehouse.query.charts import MAX_MARKS
from streamlit_app.components.charts import (
    ChartImageError,
    altair_chart,
    chart_image,
    image_export_available,
    spec_from_dict,
    spec_to_dict,
)

Q = "SELECT * FROM bronze.sales"
ROWS = 6_000  # more distinct order ids than MAX_MARKS


def write_sales(path) -> None:
    """A date, two categories (4 regions, 12 products), numbers; one row per order."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["order_id", "day", "region", "product", "amount", "qty"])
        for i in range(ROWS):
            day = date(2024, 1, 1) + timedelta(days=i % 366)
            out.writerow([i, day, f"r{i % 4}", f"p{i % 12}", (i % 97) * 1.5, i % 13])


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Iterator[Lakehouse]:
    tmp = tmp_path_factory.mktemp("chart_component")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):  # the developer's settings must not leak in
            if key.startswith("RATATOUILLE_"):
                mp.delenv(key)
        mp.chdir(tmp)
        lake = Lakehouse(Settings(lake_root=tmp / "lake", state_dir=tmp / "state"))
        write_sales(tmp / "sales.csv")
        lake.ingest(tmp / "sales.csv")
        yield lake
        lake.close()


def drawn(data: ChartData, **kwargs: Any) -> dict[str, Any]:
    spec: dict[str, Any] = altair_chart(data, **kwargs).to_dict()
    json.dumps(spec)  # what Streamlit and vl-convert receive must be plain JSON
    return spec


def rows_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    (rows,) = spec["datasets"].values()
    return list(rows)


def test_bars_by_category_stack_colors_with_other_last(lake) -> None:
    data = lake.chart(Q, ChartSpec("bar", "region", "amount", color="product", top_n=3))
    spec = drawn(data)
    enc = spec["encoding"]
    assert spec["mark"]["type"] == "bar"
    assert enc["x"] == {"field": "x", "type": "nominal", "title": "region", "sort": "-y"}
    assert enc["y"] == {"field": "y", "type": "quantitative", "title": "sum(amount)"}
    assert enc["color"]["title"] == "product"
    assert len(enc["color"]["sort"]) == 4 and enc["color"]["sort"][-1] == "other"
    assert [t["title"] for t in enc["tooltip"]] == ["region", "sum(amount)", "product"]
    assert len(rows_of(spec)) == data.table.num_rows


@pytest.mark.parametrize("mark", ["line", "area"])
def test_lines_and_areas_over_time_are_temporal(lake, mark: str) -> None:
    data = lake.chart(Q, ChartSpec(mark, "day", "qty", color="region"))  # type: ignore[arg-type]
    spec = drawn(data, width=500, height=200)
    assert spec["mark"]["type"] == mark
    assert spec["encoding"]["x"]["type"] == "temporal"
    assert spec["encoding"]["y"]["title"] == "sum(qty)"
    assert (spec["width"], spec["height"]) == (500, 200)
    # sum(BIGINT) is a HUGEINT (an Arrow decimal) in DuckDB: drawn as plain numbers.
    assert pa.types.is_decimal(data.table.schema.field("y").type)
    assert all(isinstance(r["y"], float) for r in rows_of(spec))


def test_a_small_scatter_draws_points_and_a_big_one_a_heatmap(lake) -> None:
    small = drawn(lake.chart(f"{Q} LIMIT 200", ChartSpec("point", "amount", "qty", color="region")))
    assert small["mark"]["type"] == "point"
    assert {small["encoding"][c]["type"] for c in ("x", "y")} == {"quantitative"}
    assert small["encoding"]["color"]["field"] == "color" and len(rows_of(small)) == 200

    big = lake.chart(Q, ChartSpec("point", "amount", "qty"))
    assert big.spec.mark == "heatmap" and "heatmap" in big.notes[0]
    assert drawn(big)["mark"]["type"] == "rect"


def test_histogram_bars_span_their_bins(lake) -> None:
    spec = drawn(lake.chart(Q, ChartSpec("histogram", "amount", bins=10)))
    enc = spec["encoding"]
    assert spec["mark"]["type"] == "bar"
    assert enc["x"]["bin"] == "binned" and enc["x2"] == {"field": "x_end"}
    assert enc["x"]["title"] == "amount (binned)" and enc["y"]["title"] == "count"
    rows = rows_of(spec)
    assert len(rows) == 10 and sum(r["y"] for r in rows) == ROWS


def test_heatmap_cells_are_colored_by_count(lake) -> None:
    spec = drawn(lake.chart(Q, ChartSpec("heatmap", "day", "amount", bins=10)))
    enc = spec["encoding"]
    assert spec["mark"]["type"] == "rect"
    assert enc["x"]["type"] == "temporal" and enc["x2"] == {"field": "x_end"}
    assert enc["y"]["type"] == "quantitative" and enc["y2"] == {"field": "y_end"}
    assert enc["color"] == {"field": "value", "type": "quantitative", "title": "count"}
    rows = rows_of(spec)
    assert sum(r["value"] for r in rows) == ROWS
    assert all(r["x_end"] > r["x"] and r["y_end"] > r["y"] for r in rows)

    nominal = drawn(lake.chart(Q, ChartSpec("heatmap", "region", "product")))
    assert nominal["encoding"]["x"]["type"] == "nominal" and "x2" not in nominal["encoding"]


def test_high_cardinality_x_stays_under_the_mark_limit(lake) -> None:
    ids = "SELECT order_id::VARCHAR AS id, amount FROM bronze.sales"
    for spec in (ChartSpec("bar", "id", "amount"), ChartSpec("bar", "order_id", "amount")):
        data = lake.chart(ids if spec.x == "id" else Q, spec)
        assert data.table.num_rows == MAX_MARKS and data.notes
        assert len(rows_of(drawn(data))) == MAX_MARKS
    small_numbers = drawn(lake.chart(Q, ChartSpec("bar", "qty", "amount")))
    assert small_numbers["encoding"]["x"]["type"] == "ordinal"  # 13 values: a bar each


def test_more_rows_than_vega_draws_are_cut_with_a_title(lake) -> None:
    n = MAX_MARKS + 10
    table = pa.table({"x": [str(i) for i in range(n)], "y": [1.0] * n})
    data = ChartData(ChartSpec("bar", "k", "v"), table, "nominal", "k", "sum(v)")
    spec = drawn(data)
    assert len(rows_of(spec)) == MAX_MARKS
    assert "first 5,000 of 5,010 rows" in spec["title"]["text"]


@pytest.mark.parametrize(
    "spec",
    [
        ChartSpec("line", "day", "amount", "avg", color="region", time_grain="week", top_n=3),
        ChartSpec("histogram", "amount", bins=20),
        ChartSpec("point", "amount", "qty"),
        ChartSpec("bar", "region", aggregate="count"),
    ],
)
def test_specs_survive_a_json_roundtrip(spec: ChartSpec) -> None:
    saved = json.loads(json.dumps(spec_to_dict(spec)))
    assert spec_from_dict(saved) == spec
    assert spec_from_dict({"mark": "scatter", "x": "a", "y": "b"}).mark == "point"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["bar", "x"], "dict of settings, not list"),
        ({"x": "a"}, "needs mark"),
        ({"mark": "bar"}, "needs x"),
        ({"mark": "bar", "x": "a", "colour": "b"}, "Unknown chart settings: colour"),
        ({"mark": "pie", "x": "a"}, "Unknown chart 'pie'"),
        ({"mark": "bar", "x": 3}, "x must be text"),
        ({"mark": "bar", "x": "a", "bins": "10"}, "bins must be a whole number"),
        ({"mark": "bar", "x": "a", "top_n": True}, "top_n must be a whole number"),
        ({"mark": "bar", "x": "a", "top_n": 0}, "top_n must be 1-100"),
        ({"mark": "bar", "x": "a", "aggregate": "mode"}, "Unknown aggregate"),
    ],
)
def test_bad_saved_specs_say_what_is_wrong(bad: Any, message: str) -> None:
    """Saved dicts come from files people edit: wrong shapes, names, types and ranges."""
    with pytest.raises(QueryError, match=message) as err:
        spec_from_dict(bad)
    assert err.value.title == "Cannot read this saved chart"


@pytest.mark.skipif(not image_export_available(), reason="vl-convert-python is not installed")
def test_images_render_offline(lake) -> None:
    chart = altair_chart(lake.chart(Q, ChartSpec("bar", "region", "amount")), width=400)
    assert chart_image(chart, "png").startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in chart_image(chart, "svg")[:200]
    with pytest.raises(ChartImageError, match="png or svg"):
        chart_image(chart, "pdf")  # type: ignore[arg-type]
