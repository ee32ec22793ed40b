"""The list of gold steps on the Pipelines page: SQL models, notebooks and Python assets, each
with its kind, source file, inputs, last run and where to edit it.

Rows are built by plain functions from what Dagster reports (tested without a browser); the
table is Markdown, so its links are plain links a browser (or a test) can follow.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlencode

import streamlit as st

from lakehouse import Settings
from lakehouse.notebook_runs import rendered_exists
from streamlit_app.components.health import STATUS_ICONS
from streamlit_app.dagster_client import DagsterClient, StepInfo

# Dagster kinds → what the page calls the step; the first kind found wins.
KINDS = (("sql", "SQL model"), ("ipynb", "notebook"), ("python", "Python asset"))
PLAYGROUND = "sql_playground"  # the SQL playground's URL path (st.Page from its file name)
PIPELINES = "pipelines"


@dataclass(frozen=True)
class StepRow:
    table: str  # gold.<name>
    kind: str
    source: str | None  # the file to change, relative to the app's folder when inside it
    inputs: list[str]
    status: str | None  # the last run's RunStatus
    when: datetime | None
    run_url: str | None  # the last run in Dagster's UI
    notebook_url: str | None  # the last run's executed notebook on this page
    edit_url: str | None
    asset_url: str


def kind_of(step: StepInfo) -> str:
    return next((label for kind, label in KINDS if kind in step.kinds), "asset")


def notebook_link(run_id: str, table: str) -> str:
    """This page showing a run's executed notebook (relative: it works behind any proxy)."""
    return f"{PIPELINES}?{urlencode({'notebook_run': run_id, 'step': table})}"


def model_link(table: str) -> str:
    """The SQL playground with a model's SQL in the editor."""
    return f"{PLAYGROUND}?{urlencode({'model': table})}"


def shown_path(path: str, root: Path) -> str:
    """A path as people find it: relative to `root` (the app's folder) when inside it."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return path


def notebook_tree_path(step: StepInfo, notebooks_root: Path) -> str | None:
    """The notebook the author edits, relative to JupyterLab's root (the notebooks folder):
    `source_notebook` when the step says, else the step file itself when inside that folder."""
    source = step.metadata.get("source_notebook")
    if source and not Path(source).is_absolute():
        return PurePosixPath(source).as_posix()
    for candidate in (source, step.metadata.get("notebook")):
        if candidate:
            try:
                return Path(candidate).resolve().relative_to(notebooks_root.resolve()).as_posix()
            except (ValueError, OSError):
                continue
    return None


def source_of(step: StepInfo, root: Path) -> str | None:
    if "ipynb" in step.kinds:
        source = step.metadata.get("source_notebook")
        if source and not Path(source).is_absolute():
            source = str(root / "notebooks" / source)
        path = source or step.metadata.get("notebook")
    else:
        path = step.metadata.get("path")
    return shown_path(path, root) if path else None


def edit_url(step: StepInfo, jupyter_url: str, notebooks_root: Path) -> str | None:
    if "sql" in step.kinds:
        return model_link(step.table)
    if "ipynb" in step.kinds:
        tree = notebook_tree_path(step, notebooks_root)
        return f"{jupyter_url.rstrip('/')}/lab/tree/{quote(tree)}" if tree else None
    return None  # Python assets change in the code, with an editor and a restart


def step_rows(
    steps: list[StepInfo],
    *,
    run_url: Callable[[str], str],
    has_notebook: Callable[[str, str], bool],
    jupyter_url: str,
    root: Path,
) -> list[StepRow]:
    """One row per gold step, sorted by table; `has_notebook(run_id, table)` says whether that
    run left a rendered notebook (notebook steps, also when they failed)."""
    rows = []
    for s in sorted(steps, key=lambda s: s.table):
        run_id = s.last_run_id
        notebook = (
            notebook_link(run_id, s.table)
            if run_id and "ipynb" in s.kinds and has_notebook(run_id, s.table)
            else None
        )
        rows.append(
            StepRow(
                table=f"gold.{s.table}",
                kind=kind_of(s),
                source=source_of(s, root),
                inputs=s.inputs,
                status=s.last_run_status,
                when=s.last_run_time,
                run_url=run_url(run_id) if run_id else None,
                notebook_url=notebook,
                edit_url=edit_url(s, jupyter_url, root / "notebooks"),
                asset_url=s.url,
            )
        )
    return rows


def _code(text: str) -> str:
    """Inline code in a Markdown table cell (no backtick or pipe can break out of it)."""
    safe = text.replace("`", "'").replace("|", "/")
    return f"`{safe}`"


def _last_run(row: StepRow) -> str:
    if row.status is None:
        return "never run"
    when = row.when.astimezone().strftime("%Y-%m-%d %H:%M") if row.when else ""
    parts = [f"{STATUS_ICONS.get(row.status, '▶️')} {row.status.lower()} {when}".strip()]
    if row.notebook_url:
        parts.append(f"[notebook]({row.notebook_url})")
    if row.run_url:
        parts.append(f"[run]({row.run_url})")
    return " · ".join(parts)


def markdown_table(rows: list[StepRow]) -> str:
    lines = [
        "| step | kind | source | inputs | last run | edit |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        edit = f"[{'playground' if r.kind == 'SQL model' else 'JupyterLab'}]({r.edit_url})"
        lines.append(
            f"| [{_code(r.table)}]({r.asset_url}) | {r.kind} "
            f"| {_code(r.source) if r.source else '–'} "
            f"| {', '.join(_code(i) for i in r.inputs) or '–'} "
            f"| {_last_run(r)} | {edit if r.edit_url else '–'} |"
        )
    return "\n".join(lines)


def render_steps(client: DagsterClient, settings: Settings) -> None:
    """The table of gold steps; DagsterError propagates to the page, which says what to do."""
    rows = step_rows(
        client.steps(),
        run_url=client.run_url,
        has_notebook=lambda run_id, table: rendered_exists(settings, run_id, table),
        jupyter_url=settings.jupyter_url,
        # `make run` and compose start the app in the repository, JupyterLab in its notebooks/.
        root=Path.cwd(),
    )
    if not rows:
        st.caption("No gold steps yet.")
        return
    st.markdown(markdown_table(rows))
