"""The Pipelines page in Chromium: one list of every gold step (the demo's SQL models, the Python
asset `daily_orders`, a notebook step) with its kind, and a notebook step's run opened as its
rendered notebook."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from streamlit_app.dagster_client import IN_FLIGHT, DagsterClient
from tests.e2e.conftest import ROOT, shot

pytestmark = pytest.mark.e2e
SAYS = "the e2e notebook step ran"


def cell(source: str, *tags: str) -> dict[str, object]:
    meta = {"tags": list(tags)} if tags else {}
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": meta,
        "outputs": [],
        "source": source,
    }


STEP = {
    "cells": [
        cell("run_id = None", "parameters"),
        cell(
            "from lakehouse import connect\n"
            "# dagstermill swaps the parameters cell for one that defines `context`.\n"
            'if "run_id" not in globals():\n'
            '    run_id = globals()["context"].run_id\n'
            "lake = connect()\n"
            'lake.publish("gold", "e2e_note", "SELECT 42 AS answer", run_id=run_id)\n'
            f"print({SAYS!r})"
        ),
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "ratatouille": {"deps": [], "publishes": "e2e_note"},
    },
    "nbformat": 4,
    "nbformat_minor": 4,
}


def add_steps(client: DagsterClient) -> None:
    """The demo's SQL models and one notebook step, in the folders the product reads."""
    for model in (ROOT / "pipelines" / "models").glob("*.sql"):
        shutil.copy(model, os.environ["RATATOUILLE_MODELS_DIR"])
    steps = Path(os.environ["RATATOUILLE_NOTEBOOK_STEPS_DIR"])
    (steps / "e2e_note.ipynb").write_text(json.dumps(STEP))
    client.reload()


def run_to_the_end(client: DagsterClient, key: list[str], timeout_s: float = 180) -> str:
    run_id = client.materialize(key)
    deadline = time.monotonic() + timeout_s
    while (run := client.run(run_id)) is None or run.status in IN_FLIGHT:
        assert time.monotonic() < deadline, f"run {run_id} did not finish"
        time.sleep(1)
    assert run.status == "SUCCESS", run.error
    return run_id


def test_steps_list_and_a_notebook_run(page: Page, product: dict[str, str]) -> None:
    client = DagsterClient(product["dagster"], timeout_s=30)
    add_steps(client)
    run_id = run_to_the_end(client, ["gold", "e2e_note"])

    page.goto(f"{product['url']}/pipelines")
    expect(page.get_by_role("heading", name="Steps")).to_be_visible()
    table = page.locator("table").filter(has_text="gold.e2e_note")
    for step, kind in [
        ("gold.revenue_by_month", "SQL model"),
        ("gold.customer_lifetime_value", "SQL model"),
        ("gold.daily_orders", "Python asset"),
        ("gold.e2e_note", "notebook"),
    ]:
        row = table.locator("tr").filter(has_text=step)
        expect(row.locator("td").nth(1)).to_have_text(kind)
    note = table.locator("tr").filter(has_text="gold.e2e_note")
    expect(note).to_contain_text("success")
    link = note.get_by_role("link", name="notebook")
    expect(link).to_have_attribute("href", f"pipelines?notebook_run={run_id}&step=e2e_note")
    shot(page, "steps_list")

    with page.context.expect_page() as opened:
        link.click()
    notebook = opened.value
    notebook.set_default_timeout(30_000)
    expect(notebook.get_by_text(f"gold.e2e_note · run {run_id[:8]}")).to_be_visible()
    frame = notebook.frame_locator("iframe").first
    expect(frame.get_by_text(SAYS).first).to_be_visible()
    assert notebook.locator("iframe").first.evaluate("f => !f.srcdoc.includes('<script')")
    shot(notebook, "notebook_run")
    notebook.get_by_role("link", name="All pipelines and steps").click()
    expect(notebook.get_by_role("heading", name="Steps")).to_be_visible()
