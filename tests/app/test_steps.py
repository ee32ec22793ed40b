"""The list of gold steps and a notebook run's page: Dagster's answers → steps → rows, against
the session's real Dagster, and the pages driven by AppTest."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lakehouse.notebook_runs import run_file, runs_dir
from lakehouse.settings import Settings
from streamlit_app.components import steps
from streamlit_app.dagster_client import StepInfo
from streamlit_app.dagster_client.parse import step_info
from streamlit_app.state import get_lakehouse
from tests.app.appenv import APP, fresh_app
from tests.app.dagster_fixtures import DagsterApp

RUN = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
ORDERS_ONLY = "Each downstream partition depends on the following upstream partitions: ['orders']"


def node(path: list[str], kinds: list[str], **meta: str) -> dict[str, object]:
    """An asset node as queries.STEPS asks for it."""
    return {
        "assetKey": {"path": path},
        "kinds": kinds,
        "description": None,
        "dependencies": [
            {
                "asset": {"assetKey": {"path": ["silver", "datasets"]}},
                "partitionMapping": {
                    "className": "SpecificPartitionsPartitionMapping",
                    "description": ORDERS_ONLY,
                },
            },
            {"asset": {"assetKey": {"path": ["gold", "revenue"]}}, "partitionMapping": None},
        ],
        "metadataEntries": [{"label": k, "text": v} for k, v in meta.items()]
        + [{"label": "a_number"}],
    }


def test_step_info_reads_inputs_metadata_and_last_run() -> None:
    latest: dict[str, dict[str, Any]] = {
        "latestRun": {"runId": RUN, "status": "FAILURE", "creationTime": 1.0, "endTime": 100.0},
        "latestMaterialization": {"runId": "x", "timestamp": "50000"},
    }
    s = step_info(node(["gold", "nb"], ["ipynb", "duckdb"], notebook="/n.ipynb"), latest, "u")
    assert s.inputs == ["gold.revenue", "silver.orders"], "silver's partitions are the tables"
    assert s.metadata == {"notebook": "/n.ipynb"}
    assert (s.last_run_id, s.last_run_status) == (RUN, "FAILURE")
    assert s.last_run_time == datetime.fromtimestamp(100.0, UTC)
    assert s.last_materialized == datetime.fromtimestamp(50.0, UTC)
    latest["latestMaterialization"]["runId"] = RUN
    built = step_info(node(["gold", "nb"], ["ipynb"]), latest, "u")
    assert built.last_run_status == "SUCCESS", "it built in a run where another step failed"
    never = step_info(node(["gold", "nb"], ["python"]), None, "u")
    assert never.last_run_id is None and never.last_run_time is None


def step(table: str, kinds: set[str], run: str | None = RUN, **meta: str) -> StepInfo:
    return StepInfo(
        key=["gold", table],
        kinds=frozenset(kinds),
        description=None,
        inputs=["silver.orders"],
        metadata=meta,
        url=f"http://dagster/assets/gold/{table}",
        last_run_id=run,
        last_run_status="SUCCESS" if run else None,
        last_run_time=datetime(2026, 12, 7, tzinfo=UTC) if run else None,
    )


def test_rows_say_kind_source_last_run_and_where_to_edit(tmp_path: Path) -> None:
    root = tmp_path
    (root / "notebooks" / "steps").mkdir(parents=True)
    found = [
        step("revenue", {"sql", "duckdb"}, path=str(root / "pipelines/models/revenue.sql")),
        step("daily", {"python", "duckdb"}, run=None, path=str(root / "pipelines/assets/g.py")),
        step(
            "perf",
            {"ipynb", "duckdb"},
            notebook=str(root / "notebooks/steps/perf.ipynb"),
            source_notebook="work/perf draft.ipynb",
        ),
        step("old", {"ipynb", "duckdb"}, notebook=str(root / "notebooks/steps/old.ipynb")),
        step("away", {"ipynb"}, notebook="/elsewhere/away.ipynb"),
    ]
    rows = steps.step_rows(
        found,
        run_url=lambda run_id: f"http://dagster/runs/{run_id}",
        has_notebook=lambda run_id, table: table != "old",
        jupyter_url="http://lab:8888/",
        root=root,
    )
    by = {r.table: r for r in rows}
    assert [r.table for r in rows] == sorted(by)
    assert by["gold.revenue"].kind == "SQL model"
    assert by["gold.revenue"].source == "pipelines/models/revenue.sql"
    assert by["gold.revenue"].edit_url == "sql_playground?model=revenue"
    assert by["gold.revenue"].notebook_url is None, "only notebook steps have notebooks"
    assert by["gold.daily"].kind == "Python asset" and by["gold.daily"].edit_url is None
    assert by["gold.daily"].status is None and by["gold.daily"].run_url is None
    perf = by["gold.perf"]
    assert perf.kind == "notebook" and perf.source == "notebooks/work/perf draft.ipynb"
    assert perf.edit_url == "http://lab:8888/lab/tree/work/perf%20draft.ipynb"
    assert perf.notebook_url == f"pipelines?notebook_run={RUN}&step=perf"
    assert perf.run_url == f"http://dagster/runs/{RUN}"
    assert by["gold.old"].edit_url == "http://lab:8888/lab/tree/steps/old.ipynb"
    assert by["gold.old"].notebook_url is None, "no HTML kept for that run"
    assert by["gold.away"].edit_url is None, "outside JupyterLab's folder: no link to make"

    table = steps.markdown_table(rows)
    assert f"[notebook](pipelines?notebook_run={RUN}&step=perf)" in table
    assert "[playground](sql_playground?model=revenue)" in table
    assert "| never run |" in table
    weird = steps.markdown_table(
        [steps.StepRow("gold.x", "SQL model", "a|b`c", [], None, None, None, None, None, "u")]
    )
    assert "`a/b'c`" in weird and weird.splitlines()[-1].count("|") == 7, "a cell stays a cell"


@pytest.mark.slow
def test_client_lists_the_gold_steps_with_their_last_runs(dagster_app: DagsterApp) -> None:
    found = {s.table: s for s in dagster_app.client.steps()}
    assert {"customer_revenue", "daily_orders", "flaky"} <= set(found)
    assert all(len(s.key) == 2 and s.key[0] == "gold" for s in found.values())
    revenue = found["customer_revenue"]
    assert "sql" in revenue.kinds and revenue.inputs == ["silver.orders"]
    assert revenue.metadata["path"].endswith("customer_revenue.sql")
    assert revenue.last_run_status == "SUCCESS" and revenue.last_run_id, (
        "built, though the run failed"
    )
    # Another test may have fixed and rebuilt it: its newest run, whichever way that went.
    newest = next(r for r in dagster_app.client.runs() if "gold/flaky" in r.assets)
    assert found["flaky"].last_run_status == newest.status
    assert "python" in found["daily_orders"].kinds
    assert found["daily_orders"].metadata["path"].endswith("gold.py")


# -- the notebook of a run, opened from the URL ----------------------------------------------
@pytest.fixture
def app_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app on a fresh lake; nothing answers at its Dagster URL (the page must not care)."""
    fresh_app(tmp_path, monkeypatch, dagster_url="http://127.0.0.1:9")
    return Settings()


def open_notebook(run_id: str, table: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["notebook_run"] = run_id
    at.query_params["step"] = table
    at.switch_page("app_pages/pipelines.py").run()
    assert not at.exception
    return at


def test_a_kept_notebook_opens_from_the_url(app_state: Settings) -> None:
    html = run_file(runs_dir(app_state), RUN, "perf", ".html")
    html.parent.mkdir(parents=True)
    html.write_text("<html><body><p>the executed notebook</p></body></html>")
    at = open_notebook(RUN, "perf")
    assert not at.error
    frames = at.get("iframe")
    assert frames and "the executed notebook" in frames[0].proto.srcdoc


def test_a_missing_notebook_says_so(app_state: Settings) -> None:
    at = open_notebook(RUN, "perf")
    assert "left no notebook" in at.warning[0].value
    assert not at.get("iframe")


def test_playground_opens_a_model_from_the_url(tmp_path: Path, monkeypatch) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "revenue.sql").write_text("SELECT 1 AS one\n")
    fresh_app(tmp_path, monkeypatch, models_dir=models, query_workers=1)
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["model"] = "revenue"
    try:
        at.switch_page("app_pages/sql_playground.py").run()
        assert not at.exception
        assert at.text_area(key="sqlpg_sql").value == "SELECT 1 AS one\n"
        assert at.text_input(key="sqlpg_model_name").value == "revenue"
        at.query_params["model"] = "no_such_model"
        at.run()
        assert "No such model" in at.error[0].value
    finally:
        get_lakehouse().close()  # its query workers
        st.cache_resource.clear()
