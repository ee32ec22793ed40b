"""The catalog page: tables per layer, schema, preview, history with rollback, lineage."""

import io

import pytest
from streamlit.testing.v1 import AppTest

from lakehouse import Lakehouse, Settings
from tests.app.appenv import APP, fresh_app

# AppTest keeps no key on a dataframe without selection: they are found by their order.
TABLES, SCHEMA, PREVIEW = 0, 1, 2


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Lakehouse:
    fresh_app(tmp_path, monkeypatch, dagster_url="http://dagster.test")
    return Lakehouse(Settings())


def build(lake: Lakehouse) -> tuple[str, str]:
    """80 orders → silver.orders → gold.big_orders twice; the two gold snapshot ids."""
    lines = "".join(f"{i},{i * 1.5}\n" for i in range(80))
    lake.ingest(io.BytesIO(f"id,amount\n{lines}".encode()), dataset="orders", filename="o.csv")
    lake.build_silver("orders")
    first = lake.publish("gold", "big_orders", "SELECT * FROM silver.orders WHERE amount > 100")
    second = lake.publish(
        "gold", "big_orders", "SELECT * FROM silver.orders WHERE amount > 50", run_id="run-42"
    )
    return first.snapshot_id, second.snapshot_id


def open_catalog() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("app_pages/catalog.py").run()
    assert not at.exception
    return at


def test_empty_lake(lake: Lakehouse) -> None:
    at = open_catalog()
    assert at.title[0].value == "Catalog"
    assert "No bronze tables yet" in at.info[0].value


def test_tables_schema_preview_and_history(lake: Lakehouse) -> None:
    first, second = build(lake)
    at = open_catalog()
    assert at.radio(key="catalog_layer").value == "gold", "gold first when there is any"
    assert at.dataframe[TABLES].value["table"].tolist() == ["big_orders"]
    assert at.subheader[0].value == "gold.big_orders"
    schema = at.dataframe[SCHEMA].value
    assert dict(zip(schema["column"], schema["type"], strict=True)) == {
        "id": "BIGINT",
        "amount": "DOUBLE",
    }
    assert at.metric[0].value == "46"  # amount > 50: ids 34..79
    assert "http://dagster.test/runs/run-42" in at.markdown[0].value
    history = [m.value for m in at.markdown if m.value.startswith("version `")]
    assert [h.split("`")[1] for h in history] == [second, first]
    assert "current" in history[0] and "current" not in history[1]
    assert "run `run-42`" in history[0]
    assert at.button(key=f"catalog_rollback_{first}")
    assert not [b for b in at.button if b.key == f"catalog_rollback_{second}"]

    at.radio(key="catalog_layer").set_value("bronze").run()
    assert at.dataframe[TABLES].value["rows"].tolist() == [80]
    assert len(at.dataframe[PREVIEW].value) == 50, "the preview is capped"
    assert any("no versions" in c.value for c in at.caption)


def test_rollback_asks_first_then_restores(lake: Lakehouse) -> None:
    first, second = build(lake)
    at = open_catalog()
    at.button(key=f"catalog_rollback_{first}").click().run()
    assert "current again" in at.warning[0].value
    assert lake.snapshot("gold", "big_orders").snapshot_id == second, "nothing before yes"
    at.button(key="catalog_confirm_no").click().run()
    assert not at.warning
    at.button(key=f"catalog_rollback_{first}").click().run()
    at.button(key="catalog_confirm_yes").click().run()
    assert not at.exception
    restored = lake.snapshot("gold", "big_orders")
    assert (restored.restored_from, restored.version) == (first, int(second) + 1)
    assert f"version `{first}`" in at.success[0].value
    assert at.metric[0].value == "13", "the page shows the restored version (amount > 100)"
    assert at.button(key=f"catalog_rollback_{second}"), "and can roll forward again"


def test_lineage_links_switch_the_table(lake: Lakehouse) -> None:
    build(lake)
    at = open_catalog()
    at.button(key="catalog_goto_up_silver.orders").click().run()
    assert at.radio(key="catalog_layer").value == "silver"
    assert at.subheader[0].value == "silver.orders"
    assert at.button(key="catalog_goto_up_bronze.orders")
    assert at.button(key="catalog_goto_down_gold.big_orders")
    at.button(key="catalog_goto_up_bronze.orders").click().run()
    assert at.subheader[0].value == "bronze.orders"
    assert at.button(key="catalog_goto_down_silver.orders")
    assert "Files uploaded" in " ".join(c.value for c in at.caption)
