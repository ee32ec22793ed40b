"""The SQL playground page, driven by Streamlit's AppTest against a real lake and query workers."""

from collections.abc import Iterator
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lakehouse import Lakehouse, Settings
from lakehouse.query.saved_queries import QueryStore
from streamlit_app.state import get_lakehouse
from tests.app.appenv import APP, fresh_app

PAGE = "app_pages/sql_playground.py"
ORDERS = "id,customer,amount\n1,ann,9.5\n2,bob,3\n3,ann,4.25\n"


def _close_app_lake() -> None:
    """The app's Lakehouse (cached in this process) owns query workers: stop them."""
    get_lakehouse().close()
    st.cache_resource.clear()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Nothing listens at that Dagster URL: "save as gold model" must fail soft.
    fresh_app(
        tmp_path,
        monkeypatch,
        models_dir=tmp_path / "models",
        query_workers=1,
        dagster_url="http://127.0.0.1:9",
    )
    yield tmp_path
    _close_app_lake()


@pytest.fixture
def lake(env: Path) -> Iterator[Lakehouse]:
    src = env / "orders.csv"
    src.write_text(ORDERS)
    with Lakehouse(Settings()) as lake:
        lake.ingest(src)
        yield lake


def _page() -> AppTest:
    # Straight to the page (pages have no custom url_path, so this works before a first run):
    # Home and its Dagster calls are not what these tests are about.
    at = AppTest.from_file(APP, default_timeout=30).switch_page(PAGE).run()
    assert not at.exception
    return at


def _run(at: AppTest, sql: str) -> AppTest:
    at.text_area(key="sqlpg_sql").set_value(sql)
    at.button(key="sqlpg_sql_run").click().run()
    assert not at.exception
    return at


def _table(at: AppTest):
    # The result is the page's first dataframe (AppTest does not expose its key).
    return at.dataframe[0].value


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_run_a_query(lake: Lakehouse) -> None:
    at = _run(_page(), "SELECT id, amount FROM bronze.orders ORDER BY id")
    df = _table(at)
    assert df["id"].tolist() == [1, 2, 3]
    assert df["amount"].tolist() == [9.5, 3, 4.25]
    assert "3 rows in" in _texts(at.caption)
    assert "- amount DOUBLE" in _texts(at.markdown)
    assert not at.warning  # all rows are shown


@pytest.mark.parametrize(
    ("sql", "title"),
    [
        ("COPY (SELECT 1) TO '{tmp}/stolen.csv'", "This statement is not allowed"),
        ("SELECT * FROM read_csv('/etc/passwd')", "Function not allowed"),
        ("SELECT nope FROM bronze.orders", None),
    ],
)
def test_a_refused_or_failing_query_shows_why(lake: Lakehouse, env: Path, sql, title) -> None:
    """Writing files and reading the server's files are refused; a plain mistake is explained."""
    at = _run(_page(), sql.format(tmp=env))
    assert len(at.error) == 1
    assert (title or "") in at.error[0].value
    assert "nope" in at.error[0].value if title is None else True
    assert not (env / "stolen.csv").exists()
    assert not at.dataframe


def test_truncated_results_say_so(lake: Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATATOUILLE_QUERY_ROW_CAP", "2")
    at = _run(_page(), "SELECT * FROM bronze.orders")
    assert len(_table(at)) == 2
    assert "Showing the first 2 rows" in at.warning[0].value


def test_explain_shows_the_plan(lake: Lakehouse) -> None:
    at = _run(_page(), "SELECT customer, sum(amount) FROM bronze.orders GROUP BY customer")
    at.button(key="sqlpg_explain").click().run()
    assert not at.exception
    plan = _texts(at.code)
    assert "HASH_GROUP_BY" in plan
    assert "┌" in plan


def test_schema_browser_and_examples_fill_the_editor(lake: Lakehouse) -> None:
    at = _page()
    assert "- amount DOUBLE" in _texts(at.sidebar.markdown)
    at.sidebar.button(key="sqlpg_browse_bronze_orders").click().run()
    assert at.text_area(key="sqlpg_sql").value == "SELECT *\nFROM bronze.orders\nLIMIT 100"
    picker = at.selectbox(key="sqlpg_sql_example")
    assert "Rows per table" in picker.options
    picker.select("Rows per table").run()
    assert "count(*) AS row_count" in (at.text_area(key="sqlpg_sql").value or "")
    assert at.selectbox(key="sqlpg_sql_example").value is None  # ready for the next pick
    at.button(key="sqlpg_sql_run").click().run()
    assert _table(at)["row_count"].tolist() == [3]


def test_the_editor_keeps_its_text_across_pages(lake: Lakehouse) -> None:
    at = _page()
    at.text_area(key="sqlpg_sql").set_value("SELECT 'kept' AS t").run()
    at.switch_page("app_pages/upload.py").run()
    at.switch_page(PAGE).run()
    assert at.text_area(key="sqlpg_sql").value == "SELECT 'kept' AS t"


def test_an_empty_lake_says_how_to_get_data(env: Path) -> None:
    at = _page()
    assert "The lake is empty" in at.info[0].value
    assert "ratatouille ingest" in at.info[0].value
    at.button(key="sqlpg_sql_run").click().run()  # the first example runs without tables
    assert _table(at)["answer"].tolist() == [42]


def test_history_is_kept_across_restarts(lake: Lakehouse, env: Path) -> None:
    at = _run(_page(), "SELECT count(*) AS n FROM bronze.orders")
    _run(at, "SELECT nope")
    _close_app_lake()  # a new server process
    at = _page()
    assert "History (2)" in [e.label for e in at.expander]
    assert "SELECT nope" in _texts(at.code)
    assert "✘" in _texts(at.caption)
    at.button(key="sqlpg_hist_1").click().run()
    assert at.text_area(key="sqlpg_sql").value == "SELECT count(*) AS n FROM bronze.orders"
    history = QueryStore(env / "state" / "app.sqlite").history("local")
    assert [h.rows for h in history] == [None, 1]


def test_save_open_pin_and_delete_a_query(lake: Lakehouse, env: Path) -> None:
    store = QueryStore(env / "state" / "app.sqlite")
    at = _run(_page(), "SELECT customer FROM bronze.orders ORDER BY id")
    at.text_input(key="sqlpg_save_name").set_value("  ")
    at.button(key="sqlpg_save").click().run()
    assert "Invalid query name" in at.error[0].value
    at.text_input(key="sqlpg_save_name").set_value("Customers")
    at.checkbox(key="sqlpg_save_pin").check()
    at.button(key="sqlpg_save").click().run()
    assert not at.exception
    (saved,) = store.saved()
    assert (saved.name, saved.pinned) == ("Customers", True)
    assert saved.chart is not None and saved.chart["x"] == "customer"  # the chart drawn for it

    _close_app_lake()
    at = _page()
    at.text_area(key="sqlpg_sql").set_value("SELECT 1")
    at.button(key="sqlpg_open_0").click().run()  # fills the editor and runs it
    assert at.text_area(key="sqlpg_sql").value == "SELECT customer FROM bronze.orders ORDER BY id"
    assert _table(at)["customer"].tolist() == ["ann", "bob", "ann"]
    assert at.text_input(key="sqlpg_save_name").value == "Customers"
    at.button(key="sqlpg_pin_0").click().run()
    assert store.saved(pinned_only=True) == []
    at.button(key="sqlpg_pin_0").click().run()
    assert [q.name for q in store.saved(pinned_only=True)] == ["Customers"]
    at.button(key="sqlpg_del_0").click().run()
    assert not at.exception
    assert store.saved() == []


def test_save_as_gold_model(lake: Lakehouse, env: Path) -> None:
    models = env / "models"
    at = _page()
    at.text_area(key="sqlpg_sql").set_value(
        "SELECT customer, sum(amount) AS total FROM bronze.orders GROUP BY ALL"
    )
    at.text_input(key="sqlpg_model_name").set_value("Bad Name")
    at.button(key="sqlpg_model_save").click().run()
    assert "Invalid model name" in at.error[0].value

    at.text_input(key="sqlpg_model_name").set_value("customer_totals")
    at.text_input(key="sqlpg_model_desc").set_value("Money per customer.")
    at.button(key="sqlpg_model_save").click().run()
    assert not at.exception and not at.error
    text = (models / "customer_totals.sql").read_text()
    assert text.startswith("-- description: Money per customer.\nSELECT customer")
    assert "Dagster is not reachable" in at.warning[0].value
    link = "http://127.0.0.1:9/assets/gold/customer_totals"
    assert link in _texts(at.markdown)

    at.text_area(key="sqlpg_sql").set_value("DELETE FROM bronze.orders")
    at.text_input(key="sqlpg_model_name").set_value("wipe")
    at.button(key="sqlpg_model_save").click().run()
    assert "Invalid model" in at.error[0].value
    assert sorted(p.name for p in models.iterdir()) == ["customer_totals.sql"]


def test_export_offers_a_download(lake: Lakehouse, env: Path) -> None:
    sql = "SELECT id, customer FROM bronze.orders ORDER BY id"
    at = _run(_page(), sql)
    at.button(key="sqlpg_export").click().run()
    assert not at.exception and not at.error
    download = at.download_button(key="sqlpg_download_button")
    assert download.label == "Download query.csv (3 rows, 0.0 MB)"
    assert not list((env / "state").glob("sqlpg-export-*"))  # the temp file is gone
    # AppTest does not hand out the bytes; the same export through the library does.
    done = lake.export(sql, env / "check.csv", "csv")
    assert pacsv.read_csv(done.path).to_pydict() == {
        "id": [1, 2, 3],
        "customer": ["ann", "bob", "ann"],
    }
