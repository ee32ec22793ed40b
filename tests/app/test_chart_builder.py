"""The chart builder driven by AppTest: a small script runs a query and renders the builder."""

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lakehouse import Lakehouse, Settings
from tests.app.appenv import fresh_app

SALES = "day,region,amount,note\n" + "".join(
    f"2024-01-{d:02d},r{d % 3},{d * 1.5},n{d}\n" for d in range(1, 29)
)
Q = "SELECT * FROM bronze.sales"


def builder_page(sql: str, initial_spec: dict[str, object] | None = None) -> None:
    """The script AppTest runs (its source only: imports belong inside)."""
    import streamlit as st

    from streamlit_app.components.chart_builder import render_chart_builder
    from streamlit_app.state import get_lakehouse

    lake = get_lakehouse()  # built from the RATATOUILLE_* settings of the test
    result = lake.query(sql)
    st.session_state["spec_out"] = render_chart_builder(lake, sql, result, "t", initial_spec)


@pytest.fixture(scope="module", autouse=True)
def lake(tmp_path_factory) -> Iterator[Lakehouse]:
    """One lake (and one query worker pool) for every script run in this module."""
    tmp = tmp_path_factory.mktemp("chart_builder")
    with pytest.MonkeyPatch.context() as mp:
        fresh_app(tmp, mp)  # get_lakehouse() sees these settings
        (tmp / "sales.csv").write_text(SALES)
        lake = Lakehouse(Settings())
        lake.ingest(tmp / "sales.csv")
        yield lake
        from streamlit_app.state import get_lakehouse

        get_lakehouse().close()
        st.cache_resource.clear()


def run(sql: str = Q, initial_spec: dict[str, Any] | None = None) -> AppTest:
    at = AppTest.from_function(builder_page, args=(sql, initial_spec), default_timeout=30)
    return at.run()


def charts(at: AppTest) -> list[dict[str, Any]]:
    """The Vega-Lite specs of the Altair charts on the page."""
    return [json.loads(el.proto.spec) for el in at.get("vega_lite_chart")]


def chart_rows(at: AppTest) -> int:
    """Rows sent with the page's one chart (Streamlit moves them out of the spec, as Arrow)."""
    ((dataset,),) = [el.proto.datasets for el in at.get("vega_lite_chart")]
    return int(pa.ipc.open_stream(dataset.data.data).read_all().num_rows)


def test_the_suggested_chart_renders_with_downloads() -> None:
    at = run()
    assert not at.exception and not at.error and not at.warning
    (chart,) = charts(at)
    assert chart["mark"]["type"] == "line"
    assert chart["encoding"]["x"]["type"] == "temporal"
    assert chart["encoding"]["color"]["title"] == "region"
    assert at.session_state["spec_out"]["mark"] == "line"
    assert [b.label for b in at.download_button] == ["PNG", "SVG"]
    assert at.selectbox(key="t_chart_time_grain").disabled is False
    assert at.number_input(key="t_chart_bins").disabled is True  # x is a date


def test_changing_mark_x_and_y_redraws() -> None:
    at = run()
    at.selectbox(key="t_chart_mark").set_value("bar")
    at.selectbox(key="t_chart_x").set_value("region")
    at.selectbox(key="t_chart_color").set_value(None)
    at.selectbox(key="t_chart_aggregate").set_value("max").run()
    assert not at.exception and not at.error
    (chart,) = charts(at)
    assert chart["mark"]["type"] == "bar"
    assert chart["encoding"]["x"]["type"] == "nominal"
    assert chart["encoding"]["y"]["title"] == "max(amount)"
    assert at.session_state["spec_out"] == {
        "mark": "bar",
        "x": "region",
        "y": "amount",
        "aggregate": "max",
        "color": None,
        "time_grain": "auto",
        "bins": None,
        "top_n": 10,
    }

    at.selectbox(key="t_chart_mark").set_value("histogram").run()
    (chart,) = charts(at)
    assert chart["encoding"]["y"]["title"] == "count"
    at.selectbox(key="t_chart_x").set_value("amount")
    at.number_input(key="t_chart_bins").set_value(4).run()
    (chart,) = charts(at)
    assert chart["encoding"]["x"]["bin"] == "binned"
    assert chart_rows(at) == 4


def test_an_impossible_chart_shows_an_error_not_an_exception() -> None:
    at = run()
    at.selectbox(key="t_chart_y").set_value("note").run()  # sum of text
    assert not at.exception
    assert "Cannot aggregate this column" in at.error[0].value
    assert not charts(at) and at.session_state["spec_out"] is None

    at.selectbox(key="t_chart_mark").set_value("point")
    at.selectbox(key="t_chart_x").set_value("region").run()  # a scatter of categories
    assert not at.exception and "needs a numeric or time x" in at.error[0].value


def test_a_saved_spec_is_the_start_and_a_broken_one_falls_back() -> None:
    saved = {"mark": "heatmap", "x": "day", "y": "amount", "bins": 5}
    at = run(initial_spec=saved)
    (chart,) = charts(at)
    assert chart["mark"]["type"] == "rect"
    assert at.session_state["spec_out"]["mark"] == "heatmap"

    at = run(initial_spec={"mark": "bar", "x": "gone"})
    assert "no longer returns" in at.warning[0].value
    assert charts(at)[0]["mark"]["type"] == "line"


def test_a_different_query_starts_afresh() -> None:
    at = run()
    at.selectbox(key="t_chart_mark").set_value("area").run()
    assert charts(at)[0]["mark"]["type"] == "area"
    at.args = (f"{Q} WHERE amount > 3", None)  # the page ran other SQL in the same session
    at.run()
    assert at.selectbox(key="t_chart_mark").value == "line"
    assert charts(at)[0]["mark"]["type"] == "line"


def test_nothing_to_chart_says_why() -> None:
    at = run(f"{Q} WHERE false")
    assert not at.exception and "no rows" in at.info[0].value
    assert at.session_state["spec_out"] is None
