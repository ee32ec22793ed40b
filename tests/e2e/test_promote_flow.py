"""The notebook → pipeline moment in a real browser, on the running product: in JupyterLab,
write the demo's `product_performance` notebook cell by cell, run it, press "Promote to
pipeline", make it live; Dagster builds `gold.product_performance`; the playground queries it;
an append uploaded in the app flows through silver and the step rebuilds by itself."""

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from lakehouse import Lakehouse, Settings, TableNotFoundError
from pipelines.definitions import build_defs
from tests.e2e.conftest import UPLOAD_BUTTON, UPLOADER, choose_file, shot
from tests.e2e.test_loop import run_sql
from tests.support.jupyterlab import running_lab
from tests.test_notebooks import ORDER_LINES, ORDERS, PRODUCT_PERFORMANCE, PRODUCTS, load

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TOKEN = "e2e-promote-token"
TABLE = "product_performance"


@pytest.fixture(scope="module")
def lab(product: dict[str, str]) -> Iterator[dict[str, str]]:
    """JupyterLab as `make run` starts it, over the product's notebooks folder and lake (the
    `product` fixture exported its RATATOUILLE_* settings, Dagster's URL included)."""
    root = Path(product["lake_root"]).parent
    with running_lab(root, root, dict(os.environ), TOKEN) as url:
        yield {"url": url, "root": str(root)}


def wait_for(what: str, ready: Callable[[], object], timeout_s: float = 240) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if value := ready():
                return value
        except TableNotFoundError:
            pass
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:g} s"
        time.sleep(0.5)


def top_product(lake: Lakehouse) -> str:
    sql = f"SELECT name FROM gold.{TABLE} ORDER BY revenue DESC, name LIMIT 1"
    return str(lake.sql(sql).column(0)[0].as_py())


def write_code(page: Page, source: str) -> None:
    """Into the active cell (as inserted text: no auto-indent), then run it."""
    editor = page.locator(".jp-NotebookPanel:visible .jp-Cell.jp-mod-active .cm-content")
    editor.click()
    page.keyboard.insert_text(source)
    expect(editor).to_contain_text(source.splitlines()[-1].strip())
    page.keyboard.press("Shift+Enter")


def test_a_notebook_becomes_a_step_from_jupyterlab(
    browser: Browser, product: dict[str, str], lab: dict[str, str], tmp_path: Path
) -> None:
    lake = Lakehouse(Settings())
    for name, table in {"products": PRODUCTS, "orders": ORDERS, "order_lines": ORDER_LINES}.items():
        pacsv.write_csv(table, tmp_path / f"{name}.csv")
        lake.ingest(tmp_path / f"{name}.csv")
    wait_for("silver built by the pipeline", lambda: len(lake.tables("silver")) == 3)

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    # A new notebook from the launcher, the author's code typed in and run.
    page.goto(f"{lab['url']}/lab?reset&token={TOKEN}")
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click(timeout=120_000)
    expect(page.locator(".jp-NotebookPanel:visible .ratatouille-promote-button")).to_be_visible()
    status = page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle")
    expect(status).to_be_visible(timeout=120_000)  # the kernel is up: typed cells run
    code = [c.source for c in load(PRODUCT_PERFORMANCE).cells if c.cell_type == "code"]
    for source in code:
        write_code(page, source)
    outputs = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output")
    expect(outputs.filter(has_text=f"gold.{TABLE}: 4 rows")).to_be_visible(timeout=120_000)
    expect(outputs.filter(has_text="Widget")).to_be_visible()  # the last cell's table
    shot(page, "promote-01-notebook-run")

    # Saved under the author's name (JupyterLab asks on an untitled notebook's first save).
    page.keyboard.press("Control+s")
    rename = page.locator(".jp-Dialog", has_text="Rename file")
    rename.get_by_role("textbox", name="File name").fill("product_performance.ipynb")
    rename.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("tab", name="product_performance.ipynb")).to_be_visible()
    # JupyterLab 4.6 then may say "Directory not found: ''" (its file browser following the
    # renamed file to the root folder); nothing is wrong.
    stray = page.locator(".jp-Dialog", has_text="Directory not found")
    with contextlib.suppress(PlaywrightTimeout):
        stray.get_by_role("button").first.click(timeout=3_000)

    # Promote: what was inferred first, then live.
    page.locator(".jp-NotebookPanel:visible .ratatouille-promote-button").click()
    expect(page.get_by_test_id("ratatouille-promote-preview")).to_be_visible(timeout=180_000)
    expect(page.get_by_test_id("ratatouille-reads")).to_have_text(
        "silver.order_lines, silver.orders, silver.products"
    )
    expect(page.get_by_test_id("ratatouille-publishes")).to_contain_text(f"gold.{TABLE}")
    shot(page, "promote-02-inferred")
    page.locator(".ratatouille-make-live").click()
    expect(page.get_by_test_id("ratatouille-promote-result")).to_be_visible(timeout=180_000)
    expect(page.get_by_test_id("ratatouille-asset-key")).to_have_text(f"gold/{TABLE}")
    run_link = page.get_by_test_id("ratatouille-run-link")
    expect(run_link).to_have_count(1)  # Dagster reloaded and started the build
    shot(page, "promote-03-live")
    step = Path(lab["root"]) / "steps" / f"{TABLE}.ipynb"
    meta = json.loads(step.read_text())["metadata"]["ratatouille"]
    committed = load(PRODUCT_PERFORMANCE.parent / "steps" / f"{TABLE}.ipynb").metadata.ratatouille
    assert (meta["deps"], meta["checks"]) == (committed["deps"], committed["checks"])
    assert meta["source"] == "product_performance.ipynb"

    # Dagster builds it (the author's own run published a version without a run id).
    built = wait_for("the first build", lambda: lake.snapshot("gold", TABLE).run_id)
    first = lake.snapshot("gold", TABLE)
    assert str(run_link.get_attribute("href")).endswith(str(built))
    graph = build_defs().resolve_asset_graph()
    assert graph.get(dg.AssetKey(["gold", TABLE])).parent_keys == {
        dg.AssetKey(["silver", "datasets"])
    }
    app = context.new_page()
    run_sql(app, product, f"SELECT name, revenue FROM gold.{TABLE} ORDER BY revenue DESC")
    expect(app.get_by_text("4 rows", exact=False).first).to_be_visible()
    shot(app, "promote-04-queried")
    assert top_product(lake) == "Widget"

    # An append uploaded in the app: Gizmo sells 10 more in completed order 10.
    more = pa.table(
        {"order_id": [10], "line_no": [3], "product_id": [2], "quantity": [10],
         "unit_price": [5.0], "discount": [0.0]}
    )  # fmt: skip
    upload = tmp_path / "upload" / "order_lines.csv"
    upload.parent.mkdir()
    pacsv.write_csv(more, upload)
    app.goto(f"{product['url']}/upload")
    line = choose_file(app, upload)
    app.frame_locator(UPLOADER).locator(UPLOAD_BUTTON).click()
    expect(line).to_have_attribute("data-state", "done")
    ingested = app.get_by_text(re.compile(r"order_lines\.csv → bronze\.order_lines: 1 rows?\b"))
    expect(ingested).to_be_visible(timeout=60_000)
    wait_for(
        "the step rebuilt on the new input",
        lambda: (
            lake.snapshot("gold", TABLE).version > first.version and top_product(lake) == "Gizmo"
        ),
    )
    rebuilt = lake.snapshot("gold", TABLE)
    assert rebuilt.run_id not in (None, first.run_id)
    context.close()
