"""The product's loop in a real browser: upload a CSV → the pipeline builds silver and gold →
query the gold table → a chart; and the two refusals a user must see clearly."""

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from lakehouse import Lakehouse, Settings, TableNotFoundError
from tests.e2e.conftest import UPLOAD_LIMIT_MB, shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
GOLD = "e2e_sales_by_region"


def run_sql(page: Page, product: dict[str, str], sql: str) -> None:
    page.goto(f"{product['url']}/sql_playground")
    editor = page.get_by_role("textbox", name="SQL")
    editor.fill(sql)
    editor.press("Tab")  # Streamlit takes a text area's value when it loses focus
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Run").click()


def wait_for_gold(timeout_s: float = 120) -> None:
    lake = Lakehouse(Settings())
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            lake.snapshot("gold", GOLD)
            return
        except TableNotFoundError:
            assert time.monotonic() < deadline, f"gold.{GOLD} was not built"
            time.sleep(0.5)


def test_upload_pipeline_query_chart(page: Page, product: dict[str, str], tmp_path: Path) -> None:
    page.goto(f"{product['url']}/upload")
    expect(page.get_by_text(f"Up to {UPLOAD_LIMIT_MB} MB", exact=False)).to_be_visible()
    csv = tmp_path / "e2e_sales.csv"
    csv.write_text("region,amount\nnorth,10\nsouth,5\nnorth,2.5\neast,7\n")
    page.locator('input[type="file"]').set_input_files(str(csv))
    expect(page.get_by_role("button", name="Ingest")).to_be_visible()
    shot(page, "01-upload-chosen")
    page.get_by_role("button", name="Ingest").click()
    expect(page.get_by_text("e2e_sales", exact=False).first).to_be_visible()
    expect(page.get_by_text("4 rows", exact=False).first).to_be_visible()
    page.wait_for_timeout(1_000)  # the grids paint after the text
    shot(page, "02-upload-ingested")

    wait_for_gold()
    page.goto(f"{product['url']}/pipelines")
    expect(page.get_by_text("Runs", exact=False).first).to_be_visible()
    shot(page, "03-pipelines")

    run_sql(page, product, f"SELECT region, amount FROM gold.{GOLD} ORDER BY amount DESC")
    expect(page.get_by_text("3 rows", exact=False).first).to_be_visible()
    shot(page, "04-query")
    chart = page.locator(".vega-embed").first
    expect(chart).to_be_visible(timeout=30_000)
    chart.scroll_into_view_if_needed()
    shot(page, "05-chart")


def test_oversized_upload_is_refused(page: Page, product: dict[str, str], tmp_path: Path) -> None:
    page.goto(f"{product['url']}/upload")
    big = tmp_path / "too_big.csv"
    row = "a," + "x" * 98 + "\n"
    big.write_text("id,text\n" + row * ((UPLOAD_LIMIT_MB * 2**20) // len(row) + 100))
    page.locator('input[type="file"]').set_input_files(str(big))
    expect(page.get_by_text(f"{UPLOAD_LIMIT_MB}", exact=False).first).to_be_visible()
    expect(page.get_by_text("too_big.csv", exact=False).first).to_be_visible()
    expect(page.get_by_text("File must be", exact=False).first).to_be_visible()
    shot(page, "06-oversized-refused")
    assert not (Path(product["lake_root"]) / "bronze" / "too_big").exists()


def test_hostile_query_is_refused(page: Page, product: dict[str, str]) -> None:
    run_sql(page, product, "SELECT * FROM read_csv('/etc/passwd')")
    expect(page.get_by_text("not available here", exact=False).first).to_be_visible()
    shot(page, "07-hostile-refused")
    run_sql(page, product, "COPY (SELECT 1) TO '/tmp/ratatouille-e2e.csv'")
    expect(page.get_by_text("not allowed", exact=False).first).to_be_visible()
    assert not Path("/tmp/ratatouille-e2e.csv").exists()
