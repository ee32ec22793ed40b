"""The Pipelines page opens a run's notebook from names in its URL
(`?notebook_run=<run id>&step=<table>`): only a run id and a table name are taken, so no URL
reads another file, inside the state folder or outside it."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lakehouse import LakehouseError, Settings
from lakehouse.notebook_runs import rendered_exists, rendered_notebook, run_file, runs_dir
from tests.app.appenv import APP, fresh_app

RUN = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
SECRET = "TOPSECRET-4711"
HOSTILE = [
    ("..", "secret"),  # <state_dir>/notebook_runs/../secret.html
    ("../..", "secret"),
    (RUN, "../../secret"),
    (RUN, "../../../outside/secret"),
    (f"{RUN}/../..", "secret"),
    ("/tmp", "secret"),
    (RUN, "/etc/passwd"),
    (RUN, "perf.html"),  # a suffix of its own
    (RUN, "Perf"),  # not a table name
    (RUN, "select"),  # a SQL keyword is no table name either
    (RUN.upper(), "perf"),
    (f"{RUN}\n", "perf"),
    (f"{RUN}%2f..", "perf"),
    ("", "perf"),
    (RUN, ""),
    ("a" * 5000, "perf"),
]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An app on a fresh lake with secrets planted where traversal would lead, and one real
    notebook run."""
    fresh_app(tmp_path, monkeypatch, dagster_url="http://127.0.0.1:9")
    settings = Settings()
    for folder in (settings.state_dir, tmp_path, tmp_path / "outside"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "secret.html").write_text(SECRET)
    real = run_file(runs_dir(settings), RUN, "perf", ".html")
    real.parent.mkdir(parents=True)
    real.write_text("<p>the real notebook</p>")
    return settings


@pytest.mark.parametrize(("run_id", "table"), HOSTILE)
def test_names_that_are_not_a_run_and_a_table_are_refused(
    state: Settings, run_id: str, table: str
) -> None:
    """Each case is a way a path could leave its folder or name a file nobody wrote."""
    with pytest.raises(LakehouseError, match=r"not a run id|is not allowed"):
        rendered_notebook(state, run_id, table)
    assert rendered_exists(state, run_id, table) is False


def test_the_page_refuses_them_without_reading_anything(state: Settings) -> None:
    assert rendered_notebook(state, RUN, "perf") == "<p>the real notebook</p>"
    for run_id, table in HOSTILE[:6]:
        at = AppTest.from_file(APP, default_timeout=30)
        at.query_params["notebook_run"] = run_id
        at.query_params["step"] = table
        at.switch_page("app_pages/pipelines.py").run()
        assert not at.exception
        assert at.error and (
            "Invalid run id" in at.error[0].value or "Invalid step" in at.error[0].value
        )
        assert not at.get("iframe"), (run_id, table)
        shown = "\n".join(str(e.value) for e in [*at.markdown, *at.error, *at.warning])
        assert SECRET not in shown


@pytest.mark.parametrize("name", ["../secret", "/etc/passwd", "secret.html", "Revenue", ""])
def test_the_playground_opens_only_model_names(state: Settings, name: str) -> None:
    """`sql_playground?model=<name>` reads `<models_dir>/<name>.sql` for plain names only."""
    from lakehouse import models

    with pytest.raises(LakehouseError, match="is not allowed"):
        models.read(state, name)
