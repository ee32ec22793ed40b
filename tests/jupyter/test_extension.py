"""JupyterLab's "Promote to pipeline": a real `jupyter lab` started with the flags `make run`
passes loads the server extension and the prebuilt lab extension; the handler answers only
authenticated calls for notebooks inside the served folder; in Chromium, the notebook toolbar
has the button and the command palette the command. The committed bundle is the current
source's build (`make jupyter-ext`); no npm is needed to check it."""

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from jupyter_ratatouille import LABEXTENSIONS
from jupyter_ratatouille.build import BUNDLE, DIGEST, source_digest
from lakehouse import Lakehouse, Settings
from pipelines.launch import JUPYTER_EXTENSIONS
from pipelines.serve import free_port
from tests.e2e.conftest import browser, shot  # noqa: F401 - browser is a fixture
from tests.support.jupyterlab import clean_env, running_lab
from tests.support.lakedirs import env_vars, lake_dirs

TOKEN = "a-test-token-for-the-lab"
AUTH = {"Authorization": f"token {TOKEN}"}
SETUP = "import lakehouse\nlake = lakehouse.connect()"
# name → code cells: one that works, one that publishes nothing.
NOTEBOOKS = {
    "sales.ipynb": [
        SETUP,
        'lake.sql("SELECT count(*) AS n FROM silver.sales")',
        'lake.publish("gold", "sales_by_region", '
        '"SELECT region, sum(amount) AS amount FROM silver.sales GROUP BY region")',
    ],
    "explore.ipynb": [SETUP, 'lake.sql("SELECT * FROM silver.sales LIMIT 5")'],
}


def write_notebook(path: Path, cells: list[str]) -> None:
    """A notebook of code cells for the python3 kernel (so the lab asks for none)."""
    nb = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {},
             "outputs": [], "source": code}
            for i, code in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    path.write_text(json.dumps(nb))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`jupyter lab` as `make run` starts it, on a free port, serving a notebooks folder, with
    a lake of its own (silver.sales) in the environment and no developer's Jupyter config.
    Dagster is not running: a step made live says it appears when Dagster starts."""
    root = tmp_path_factory.mktemp("lab")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    for name, cells in NOTEBOOKS.items():
        write_notebook(notebooks / name, cells)
    dirs = lake_dirs(root)
    with Lakehouse(Settings(storage="local", **dirs)) as lake:  # type: ignore[arg-type]
        lake.publish(
            "silver",
            "sales",
            "SELECT * FROM (VALUES ('north', 10.0), ('south', 5.0), ('north', 2.5)) "
            "AS t(region, amount)",
        )
    dagster = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = clean_env() | env_vars({**dirs, "dagster_url": dagster})
    with running_lab(root, notebooks, env, TOKEN) as url:
        yield {
            "url": url,
            "notebooks": str(notebooks),
            "steps": str(dirs["notebook_steps_dir"]),
            "dagster": dagster,
            "log": str(root / "jupyter.log"),
        }


def post(
    url: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{url}/ratatouille/promote",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_the_committed_bundle_is_built_from_the_current_source() -> None:
    assert DIGEST.read_text().strip() == source_digest(), (
        "jupyter_ratatouille/js changed since the bundle was built: `make jupyter-ext`"
    )
    manifest = json.loads((BUNDLE / "package.json").read_text())
    assert LABEXTENSIONS / manifest["name"] == BUNDLE  # where JupyterLab looks for it
    assert (BUNDLE / manifest["jupyterlab"]["_build"]["load"]).is_file()


def test_make_run_points_the_lab_at_the_bundle() -> None:
    assert f"--LabApp.extra_labextensions_path={LABEXTENSIONS}" in JUPYTER_EXTENSIONS


def test_the_lab_loads_both_extensions(lab) -> None:
    with urllib.request.urlopen(f"{lab['url']}/lab/api/extensions?token={TOKEN}") as resp:
        names = {e["name"]: e for e in json.loads(resp.read())}
    assert names["jupyter-ratatouille"]["enabled"], names["jupyter-ratatouille"]
    assert "jupyter_ratatouille | extension was successfully loaded" in Path(lab["log"]).read_text()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "token not-the-token"}])
def test_the_handler_refuses_unauthenticated_calls(lab, headers) -> None:
    status, _ = post(lab["url"], {"path": "sales.ipynb", "dry_run": True}, headers)
    assert status == 403


@pytest.mark.parametrize(
    "path", ["../outside.ipynb", "/etc/passwd", "a/../../outside.ipynb", "link/outside.ipynb", ""]
)
def test_the_handler_refuses_paths_outside_the_notebooks_folder(lab, tmp_path, path) -> None:
    """Parent steps, absolute paths and a symlink out of the folder each escape it."""
    (tmp_path / "outside.ipynb").write_text("{}")
    link = Path(lab["notebooks"]) / "link"
    if not link.exists():
        link.symlink_to(tmp_path, target_is_directory=True)
    status, body = post(lab["url"], {"path": path, "dry_run": True}, AUTH)
    assert status == 400, body


def test_a_refusal_is_an_answer_not_an_error(lab) -> None:
    status, body = post(lab["url"], {"path": "missing.ipynb", "dry_run": True}, AUTH)
    assert status == 200
    assert body["ok"] is False and body["title"] == "No such notebook", body
    assert "missing.ipynb" in str(body["error"])


@pytest.mark.parametrize("body", [["a list"], {"path": "sales.ipynb", "dry_run": "yes"}])
def test_the_handler_refuses_malformed_bodies(lab, body) -> None:
    status, _ = post(lab["url"], body, AUTH)
    assert status == 400


@pytest.fixture
def page(browser: Browser, lab) -> Iterator[Page]:  # noqa: F811 - the imported fixture
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


def open_notebook(page: Page, lab: dict[str, str], name: str) -> None:
    # `reset`: a fresh workspace, not the tabs an earlier test left open.
    page.goto(f"{lab['url']}/lab/tree/{name}?reset&token={TOKEN}")
    # The lab's first load is slow on a busy machine.
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel.locator(".ratatouille-promote-button")).to_be_visible(timeout=90_000)


@pytest.mark.e2e
def test_a_notebook_has_the_button_and_the_palette_the_command(page, lab) -> None:
    open_notebook(page, lab, "explore.ipynb")
    button = page.locator(".jp-NotebookPanel:visible .ratatouille-promote-button")
    expect(button).to_be_visible()
    expect(button).to_have_text("Promote to pipeline")
    palette = page.locator(".lm-CommandPalette-input")
    page.locator(".lm-MenuBar-itemLabel", has_text="View").click()
    page.locator(".lm-Menu-itemLabel", has_text="Activate Command Palette").click()
    expect(palette).to_be_visible()
    palette.fill("Promote to pipeline")
    item = page.locator(".lm-CommandPalette-item", has_text="Promote to pipeline")
    expect(item).to_have_count(1)
    expect(item).not_to_have_class("lm-mod-disabled")


@pytest.mark.e2e
def test_a_notebook_that_publishes_nothing_is_refused_with_the_reason(page, lab) -> None:
    open_notebook(page, lab, "explore.ipynb")
    page.locator(".jp-NotebookPanel:visible .ratatouille-promote-button").click()
    refusal = page.get_by_test_id("ratatouille-promote-refusal")
    expect(refusal).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("ratatouille-refusal-title")).to_have_text(
        "The notebook publishes nothing"
    )
    expect(page.get_by_test_id("ratatouille-refusal-message")).to_contain_text("lake.publish(")
    shot(page, "jupyter-promote-refused")
    assert list(Path(lab["steps"]).iterdir()) == []


@pytest.mark.e2e
def test_a_working_notebook_shows_what_was_inferred_then_goes_live(page, lab) -> None:
    open_notebook(page, lab, "sales.ipynb")
    page.locator(".jp-NotebookPanel:visible .ratatouille-promote-button").click()
    expect(page.get_by_test_id("ratatouille-promote-progress")).to_be_visible()
    expect(page.get_by_test_id("ratatouille-promote-preview")).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("ratatouille-reads")).to_have_text("silver.sales")
    expect(page.get_by_test_id("ratatouille-publishes")).to_have_text(
        "gold.sales_by_region (2 rows in the trial run)"
    )
    shot(page, "jupyter-promote-preview")
    assert list(Path(lab["steps"]).iterdir()) == []  # nothing is live before the user says so
    page.locator(".ratatouille-make-live").click()
    result = page.get_by_test_id("ratatouille-promote-result")
    expect(result).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("ratatouille-asset-key")).to_have_text("gold/sales_by_region")
    step = Path(lab["steps"]) / "sales_by_region.ipynb"
    expect(page.get_by_test_id("ratatouille-step-path")).to_have_text(str(step))
    expect(page.get_by_test_id("ratatouille-dagster")).to_contain_text(
        "appears when Dagster starts"
    )
    expect(page.get_by_test_id("ratatouille-asset-link")).to_have_attribute(
        "href", f"{lab['dagster']}/assets/gold/sales_by_region"
    )
    expect(page.get_by_test_id("ratatouille-run-link")).to_have_count(0)  # no run started
    shot(page, "jupyter-promote-live")
    meta = json.loads(step.read_text())["metadata"]["ratatouille"]
    assert (meta["deps"], meta["publishes"]) == (["silver.sales"], "sales_by_region")
