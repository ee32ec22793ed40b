"""The product's loop in a real browser: upload a CSV → the pipeline builds silver and gold →
query the gold table → a chart; and the two refusals a user must see clearly."""

import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from lakehouse import Lakehouse, Settings, TableNotFoundError
from lakehouse.uploads.records import FOLDER, records
from tests.e2e.conftest import UPLOAD_BUTTON, UPLOAD_LIMIT_MB, UPLOADER, choose_file, shot

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
    uploader = page.frame_locator(UPLOADER)
    expect(uploader.get_by_text(f"Up to {UPLOAD_LIMIT_MB} MB per file")).to_be_visible()
    csv = tmp_path / "e2e_sales.csv"
    csv.write_text("region,amount\nnorth,10\nsouth,5\nnorth,2.5\neast,7\n")
    line = choose_file(page, csv)
    expect(line).to_contain_text("bronze.e2e_sales (append)")
    shot(page, "01-upload-chosen")
    uploader.locator(UPLOAD_BUTTON).click()
    expect(line).to_have_attribute("data-state", "done")
    # The upload server ingests it; the page follows its record and then shows the outcome.
    outcome = page.get_by_text(re.compile(r"e2e_sales\.csv → bronze\.e2e_sales: 4 rows"))
    expect(outcome).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(2)  # its columns and preview
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
    uploader = page.frame_locator(UPLOADER)
    big = tmp_path / "too_big.csv"
    row = "a," + "x" * 98 + "\n"
    big.write_text("id,text\n" + row * ((UPLOAD_LIMIT_MB * 2**20) // len(row) + 100))
    uploader.locator("input.uppy-Dashboard-input").first.set_input_files(str(big))
    refusal = f"too_big.csv exceeds maximum allowed size of {UPLOAD_LIMIT_MB} MB"
    expect(uploader.get_by_text(refusal).first).to_be_visible()  # Uppy's informer, for seconds
    shot(page, "06-oversized-refused")
    expect(uploader.locator('#files li[data-file-name="too_big.csv"]')).to_have_count(0)
    expect(uploader.locator(UPLOAD_BUTTON)).to_have_count(0)

    # A client that skips the browser's check: the upload server refuses before storing a byte.
    create = urllib.request.Request(
        f"{product['uploads']}/files/",
        method="POST",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(big.stat().st_size)},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(create, timeout=10)
    assert refused.value.code == 413

    lake = Lakehouse(Settings())
    known = records(lake.storage)
    assert not [r for r in known if r.filename == big.name]
    area = Path(lake.storage.uri(FOLDER + "x")).parent
    assert {f.stem for f in area.glob("*.bin")} <= {r.id for r in known}
    assert not (Path(product["lake_root"]) / "bronze" / "too_big").exists()


def test_hostile_query_is_refused(page: Page, product: dict[str, str]) -> None:
    run_sql(page, product, "SELECT * FROM read_csv('/etc/passwd')")
    expect(page.get_by_text("not available here", exact=False).first).to_be_visible()
    shot(page, "07-hostile-refused")
    run_sql(page, product, "COPY (SELECT 1) TO '/tmp/ratatouille-e2e.csv'")
    expect(page.get_by_text("not allowed", exact=False).first).to_be_visible()
    assert not Path("/tmp/ratatouille-e2e.csv").exists()
