"""The Upload page, driven by Streamlit's AppTest against a real lake in tmp_path."""

import pytest
from streamlit.testing.v1 import AppTest

from lakehouse import Lakehouse, Settings
from tests.app.appenv import APP, fresh_app

ORDERS = ("orders.csv", b"id,amount\n1,9.5\n2,3\n3,4.25\n", "text/csv")
DAGSTER_DOWN = "http://127.0.0.1:9"  # nothing listens: the page must fail soft
JUNK = ("junk.csv", bytes(range(256)) * 16, "text/csv")  # NUL and control bytes: not text


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Lakehouse:
    fresh_app(tmp_path, monkeypatch, max_upload_mb=50, dagster_url=DAGSTER_DOWN)
    return Lakehouse(Settings())


def upload_page(*files: tuple[str, bytes, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("app_pages/upload.py").run()
    assert not at.exception
    if files:
        at.file_uploader[0].set_value(list(files)).run()
        assert not at.exception
    return at


def click_ingest(at: AppTest) -> AppTest:
    at.button[0].click().run()
    assert not at.exception
    return at


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_page_states_the_limit_and_the_ways_around_it(lake: Lakehouse) -> None:
    at = upload_page()
    info = at.info[0].value
    assert "50 MB" in info
    assert str(lake.settings.lake_root / "landing") in info
    assert "ratatouille ingest FILE" in info
    assert at.file_uploader[0].proto.max_upload_size_mb == 50  # the browser enforces it too
    assert at.file_uploader[0].accept_multiple_files


def test_a_csv_lands_in_bronze_and_the_result_stays(lake: Lakehouse) -> None:
    at = click_ingest(upload_page(ORDERS))
    assert lake.table("bronze", "orders").rows == 3
    text = markdown(at)
    assert "orders.csv → bronze.orders: **3 rows**, 2 columns" in text  # names as plain text
    assert f"({DAGSTER_DOWN}/runs?q%5B%5D=tag%3Aratatouille%2Fdataset%3Dorders)" in text
    assert any("Dagster is not reachable" in c.value for c in at.caption)
    columns, preview = at.dataframe[0].value, at.dataframe[1].value
    assert dict(zip(columns["column"], columns["type"], strict=True)) == {
        "id": "BIGINT",
        "amount": "DOUBLE",
    }
    assert preview["id"].tolist() == [1, 2, 3]
    at.run()  # any later rerun still shows the result
    assert "**3 rows**" in markdown(at)
    assert len(at.session_state["upload_state"].results) == 1


def test_one_bad_file_does_not_stop_the_others(lake: Lakehouse) -> None:
    at = click_ingest(upload_page(JUNK, ORDERS))
    assert [t.name for t in lake.tables("bronze")] == ["orders"]
    assert "**Not a text file**" in at.error[0].value
    assert "junk.csv: nothing was ingested" in markdown(at)
    assert "**3 rows**" in markdown(at)


def test_dataset_name_and_mode_are_the_users_choice(lake: Lakehouse) -> None:
    at = upload_page(ORDERS)
    assert at.text_input[0].value == "orders"  # prefilled from the file name
    at.text_input[0].set_value("sales")
    click_ingest(at)
    click_ingest(at)
    assert lake.table("bronze", "sales").batches == 2
    assert "batch 2 of the dataset, append" in markdown(at)
    at.radio[0].set_value("replace")
    click_ingest(at)
    assert lake.table("bronze", "sales").batches == 1
    assert lake.table("bronze", "sales").rows == 3
    assert "replaced 2 earlier batches" in markdown(at)
    assert [t.name for t in lake.tables("bronze")] == ["sales"]


def test_an_invalid_name_is_refused_inline_and_nothing_is_ingested(lake: Lakehouse) -> None:
    at = upload_page(ORDERS, ("more.csv", b"x\n1\n", "text/csv"))
    at.text_input[0].set_value("Bad Name!")
    click_ingest(at)
    errors = [e.value for e in at.error]
    # The name is the user's text, so the error shows it escaped (plain), not as Markdown.
    assert any("**Invalid dataset name**" in e and "'Bad Name\\!'" in e for e in errors)
    assert any("nothing was ingested" in e for e in errors)
    assert lake.tables("bronze") == []
    assert at.session_state["upload_state"].results == []


def test_schema_drift_shows_on_a_later_batch(lake: Lakehouse) -> None:
    at = click_ingest(upload_page(ORDERS))
    assert not at.warning  # a first batch has nothing to drift from
    at.file_uploader[0].set_value(("orders.csv", b"id,amount,note\n4,1.5,late\n", "text/csv"))
    click_ingest(at.run())
    assert "**Schema drift**" in at.warning[0].value
    assert "added note" in at.warning[0].value
    assert lake.table("bronze", "orders").batches == 2
