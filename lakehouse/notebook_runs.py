"""Where each notebook-step run leaves its executed notebook and that notebook rendered as HTML:
`<state_dir>/notebook_runs/<run_id>/<table>.ipynb` and `.html`, written by the pipelines (also
when the notebook failed) and opened by the app.

The app takes the run id and the table from its URL, so both are checked against their shapes
(a Dagster run id, a table name) before they become part of a path: nothing else is opened.
"""

import re
from pathlib import Path
from typing import Literal

from lakehouse.errors import LakehouseError
from lakehouse.layers import check_table_name
from lakehouse.settings import Settings

FOLDER = "notebook_runs"
# Dagster's run ids are UUID4s in their canonical lower-case form.
_RUN_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Suffix = Literal[".ipynb", ".html"]


def runs_dir(settings: Settings) -> Path:
    return settings.state_dir / FOLDER


def check_run_id(run_id: str) -> str:
    """Refuse anything that is not a Dagster run id (and so could name another file)."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
        raise LakehouseError(
            f"{str(run_id)[:80]!r} is not a run id (a Dagster run id looks like "
            "1b2c3d4e-0000-4000-8000-123456789abc).",
            title="Invalid run id",
        )
    return run_id


def run_file(root: Path, run_id: str, table: str, suffix: Suffix) -> Path:
    """`<root>/<run_id>/<table><suffix>`, once both names have their expected shapes."""
    if suffix not in (".ipynb", ".html"):
        raise LakehouseError(f"no notebook-run file ends in {suffix!r}", title="Invalid file")
    check_run_id(run_id)
    check_table_name(table, "step")
    return root / run_id / f"{table}{suffix}"


def rendered_notebook(settings: Settings, run_id: str, table: str) -> str | None:
    """The HTML of a run's executed notebook; None when that run left none (not a notebook
    step, a run from before HTML was kept, or removed since)."""
    path = run_file(runs_dir(settings), run_id, table, ".html")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def rendered_exists(settings: Settings, run_id: str, table: str) -> bool:
    try:
        return run_file(runs_dir(settings), run_id, table, ".html").is_file()
    except LakehouseError:
        return False
