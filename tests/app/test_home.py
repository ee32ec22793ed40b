"""The app's entrypoint and home page, driven by Streamlit's AppTest."""

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from lakehouse import Lakehouse, Settings, demo
from lakehouse.query.saved_queries import QueryStore
from pipelines.serve import free_port
from streamlit_app.state import get_lakehouse
from tests.app.appenv import APP, ROOT, fresh_app


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Lakehouse:
    # Nobody listens at that Dagster URL: the runs section must say so, not crash or hang.
    fresh_app(
        tmp_path,
        monkeypatch,
        models_dir=ROOT / "pipelines" / "models",
        dagster_url=f"http://127.0.0.1:{free_port()}",
    )
    return Lakehouse(Settings())


def charts(at: AppTest) -> list[pa.Table]:
    """The data of each Altair chart on the page (Streamlit sends it as Arrow)."""
    out = []
    for chart in at.get("vega_lite_chart"):
        (dataset,) = chart.proto.datasets
        out.append(pa.ipc.open_stream(dataset.data.data).read_all())
    return out


def test_empty_lake_shows_the_tour(lake: Lakehouse) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "The lake is empty" in at.info[0].value
    links = {link.proto.page for link in at.get("page_link")}
    assert {"upload", "pipelines", "sql_playground"} <= links
    assert "Dagster is unreachable" in at.info[-1].value
    assert "local" in at.sidebar.caption[0].value
    assert "not reachable" in at.sidebar.caption[1].value


def test_home_lists_tables(lake: Lakehouse, tmp_path) -> None:
    src = tmp_path / "orders.csv"
    src.write_text("id,amount\n1,9.5\n2,3\n")
    lake.ingest(src)
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    df = at.dataframe[0].value
    assert df["table"].tolist() == ["bronze.orders"]
    assert df["rows"].tolist() == [2]
    assert [m.value for m in at.metric] == ["1 table", "0 tables", "0 tables"]
    assert not charts(at)


def seed_demo_gold(lake: Lakehouse, tmp_path) -> None:
    """The demo retail data at a tenth of its size, through silver into the two gold models."""
    for path in demo.generate(tmp_path / "demo", scale=0.05):
        lake.ingest(path, dataset=path.stem)
        lake.build_silver(path.stem)
    for model in lake.models():
        lake.build_model(model)


def test_pinned_demo_charts_follow_new_gold_snapshots(lake: Lakehouse, tmp_path) -> None:
    store = QueryStore(lake.settings.state_dir / "app.sqlite")
    assert len(demo.seed_saved_queries(store)) == 2
    assert demo.seed_saved_queries(store) == [], "seeding again keeps what is there"
    try:
        # Pinned before the pipeline ran: the tiles wait for their gold tables.
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert not at.exception
        # Table names are shown Markdown-escaped (gold.revenue\_by\_month renders as typed).
        shown = [c.value.replace("\\", "") for c in at.caption]
        assert any("Waiting for gold.revenue_by_month" in c for c in shown)

        seed_demo_gold(lake, tmp_path)
        at.run()
        assert not at.exception and not at.error
        revenue, customers = charts(at)  # the pinned queries, by name
        assert set(revenue.column_names) >= {"x", "y", "color"}
        assert revenue.num_rows > 24, "24 months, a line per category"
        assert customers.num_rows == 10

        # A new snapshot of gold.revenue_by_month recomputes its chart (and only its chart).
        lake.publish("gold", "revenue_by_month", "SELECT * FROM gold.revenue_by_month LIMIT 3")
        at.run()
        assert not at.exception
        revenue_after, customers_after = charts(at)
        assert revenue_after.num_rows == 3
        assert customers_after.equals(customers)
    finally:
        get_lakehouse().close()  # the chart's query workers


def test_a_pinned_query_that_fails_says_why(lake: Lakehouse) -> None:
    lake.publish("gold", "numbers", pa.table({"n": [1, 2, 3]}))
    store = QueryStore(lake.settings.state_dir / "app.sqlite")
    store.save(
        "Broken",
        "SELECT n FROM gold.numbers",
        chart={"mark": "bar", "x": "nope"},
        pinned=True,
        user="t",
    )
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
        assert not at.exception
        assert "nope" in at.error[0].value
        assert at.dataframe[0].value["table"].tolist() == ["gold.numbers"]
    finally:
        get_lakehouse().close()


def test_demo_seed_pins_the_charts(lake: Lakehouse) -> None:
    """`ratatouille demo` leaves Home with a dashboard, not an empty page."""
    demo.seed(lake)
    pinned = QueryStore(lake.settings.state_dir / "app.sqlite").saved(pinned_only=True)
    assert [q.name for q in pinned] == ["Revenue by month", "Top customers by lifetime revenue"]
    assert all(q.chart and q.chart["x"] for q in pinned)
