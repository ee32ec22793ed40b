"""Executed notebooks of notebook-step runs: kept, rendered to script-free HTML, linked; a
failed run's notebook kept the same way."""

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from lakehouse import Settings
from lakehouse.notebook_runs import run_file
from pipelines.notebook_runs import (
    OUTPUT_NOTEBOOKS,
    ExecutedNotebooks,
    app_link,
    keep,
    render_html,
    run_notebook,
)

RUN = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
HOSTILE = (
    "<table class='dataframe'><thead><tr><th>answer</th></tr></thead>"
    "<tbody><tr><td>42</td></tr></tbody></table>"
    "<script>alert('output')</script><img src=x onerror=alert(1)>"
    "<a href='javascript:alert(2)'>a link</a><iframe src='https://example.com'></iframe>"
    "<svg onload=alert(3)></svg><style>body {display: none}</style>"
)


def notebook(cells: list[dict[str, Any]], **metadata: Any) -> bytes:
    """An nbformat 4.4 notebook (no cell ids to make up)."""
    nb = {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 4}
    return json.dumps(nb).encode()


def code(source: str, *outputs: dict[str, Any], tags: tuple[str, ...] = ()) -> dict[str, Any]:
    meta = {"tags": list(tags)} if tags else {}
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": meta,
        "outputs": list(outputs),
        "source": source,
    }


def display(data: dict[str, str]) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def hostile_notebook() -> bytes:
    cell = code(
        "show()",
        {"output_type": "stream", "name": "stdout", "text": "printed <script>alert(4)</script>\n"},
        display({"text/html": HOSTILE, "text/plain": "table"}),
        display({"application/javascript": "alert(5)"}),
        display({"text/markdown": "**md** <script>alert(6)</script>"}),
        {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": ["boom"]},
    )
    markdown = {
        "cell_type": "markdown",
        "metadata": {},
        "source": "# A step\n\nText <script>alert(7)</script>",
    }
    widgets: dict[str, Any] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return notebook([markdown, cell], widgets=widgets)


def test_rendered_notebook_holds_no_script() -> None:
    html = render_html(hostile_notebook())
    lowered = html.lower()
    for active in ("<script", "onerror=", "onload=", "javascript:", "<iframe", "alert(5)"):
        assert active not in lowered, active
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", lowered), "no event handler attributes"
    assert "https://cdnjs" not in html, "nothing is fetched from a CDN"
    assert "Content-Security-Policy" in html
    assert "<th>answer</th>" in html and "<td>42</td>" in html, "tables still render"
    assert "<h1" in html and "A step" in html and "<strong>md</strong>" in html
    assert "a link" in html and "boom" in html and "printed" in html


def test_keep_writes_notebook_and_html_beside_it(tmp_path: Path) -> None:
    paths = keep(tmp_path, RUN, "step_one", hostile_notebook())
    assert paths[".ipynb"] == tmp_path / RUN / "step_one.ipynb"
    assert paths[".html"].read_text().startswith("<!DOCTYPE html>")
    meta = ExecutedNotebooks(base_dir=str(tmp_path), app_url="http://app:8501/").keep(
        RUN, "step_one", hostile_notebook()
    )
    assert meta["notebook_run"].value == (
        f"http://app:8501/pipelines?notebook_run={RUN}&step=step_one"
    )
    assert meta["executed_notebook_html"].value == str(tmp_path / RUN / "step_one.html")
    assert app_link("http://h", RUN, "t") == f"http://h/pipelines?notebook_run={RUN}&step=t"


@pytest.mark.parametrize("run_id", ["../etc", f"{RUN}/..", RUN.upper(), "", f"{RUN}\n"])
def test_keep_refuses_names_that_are_not_a_run_id(tmp_path: Path, run_id: str) -> None:
    """The run id becomes a folder name: only Dagster's shape is accepted."""
    with pytest.raises(Exception, match="not a run id"):
        keep(tmp_path, run_id, "step_one", b"{}")


# -- a failing notebook under dagstermill: `execute_job(reconstructable(...))` -----------------
FAILING = [
    "run_id = None",  # the parameters cell
    "print('before the failure')",
    "raise ValueError('the notebook broke here')",
]


def failing_job() -> dg.JobDefinition:
    notebook = os.environ["TEST_FAILING_NOTEBOOK"]

    @dg.asset(key=["gold", "broken_step"], io_manager_key=OUTPUT_NOTEBOOKS)
    def broken_step(context: dg.AssetExecutionContext) -> Iterator[Any]:
        yield from run_notebook(context, "broken_step", notebook)

    defs = dg.Definitions(
        assets=[broken_step],
        jobs=[dg.define_asset_job("broken", selection=[broken_step])],
        resources={
            OUTPUT_NOTEBOOKS: ExecutedNotebooks(
                base_dir=os.environ["TEST_RUNS_DIR"], app_url="http://app"
            )
        },
    )
    return defs.resolve_job_def("broken")


@pytest.mark.slow
def test_failed_notebook_is_kept_and_rendered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells = [code(src, tags=("parameters",) if i == 0 else ()) for i, src in enumerate(FAILING)]
    path = tmp_path / "broken_step.ipynb"
    path.write_bytes(notebook(cells, kernelspec={"name": "python3", "display_name": "Python 3"}))
    monkeypatch.setenv("TEST_FAILING_NOTEBOOK", str(path))
    monkeypatch.setenv("TEST_RUNS_DIR", str(tmp_path / "runs"))
    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.reconstructable(failing_job), instance=instance)
        assert not result.success
        logs = [e.user_message for e in instance.all_logs(result.run_id)]
    html_path = run_file(tmp_path / "runs", result.run_id, "broken_step", ".html")
    html = html_path.read_text()
    assert "before the failure" in html and "the notebook broke here" in html
    kept = json.loads(html_path.with_suffix(".ipynb").read_text())
    assert kept["cells"][1]["outputs"], "the outputs up to the failure are there"
    link = f"http://app/pipelines?notebook_run={result.run_id}&step=broken_step"
    assert any(link in m for m in logs), "the run's log links to it"


def test_settings_runs_dir_is_under_state_dir(tmp_path: Path) -> None:
    from lakehouse.notebook_runs import runs_dir

    assert runs_dir(Settings(state_dir=tmp_path)) == tmp_path / "notebook_runs"


def test_dagstermills_own_cells_make_way_unless_the_run_failed_there() -> None:
    injected = code("context = ...", tags=("injected-parameters",))
    injected["outputs"] = [{"output_type": "stream", "name": "stderr", "text": "BetaWarning"}]
    step = code("print(1)", {"output_type": "stream", "name": "stdout", "text": "step output"})
    teardown = code("teardown()", tags=("injected-teardown",))
    html = render_html(notebook([injected, step, teardown]))
    assert "BetaWarning" not in html and "teardown()" not in html
    assert "step output" in html and "Run context injected by Dagster" in html
    failed = {"output_type": "error", "ename": "E", "evalue": "x", "traceback": ["no context"]}
    injected["outputs"].append(failed)
    assert "no context" in render_html(notebook([injected, step]))
