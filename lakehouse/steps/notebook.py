"""Reading an author's notebook and writing its step: the cells `promote` adds, the metadata
Dagster reads, and what the code says without running it (SQL strings, asserts)."""

from __future__ import annotations

import ast
import copy
import os
import tempfile
from pathlib import Path
from typing import Any

from lakehouse.query.inputs import tables_read
from lakehouse.steps.context import PromoteError
from lakehouse.steps.runtime import assert_description, top_level_asserts

# nbformat's NotebookNode is untyped (an attribute dict).
NotebookNode = Any

SETUP_TAG = "ratatouille-setup"
PARAMETERS_TAG = "parameters"
_ADDED_TAGS = {SETUP_TAG, PARAMETERS_TAG, "injected-parameters"}
SETUP_SOURCE = (
    "# Added by `ratatouille promote`: records this step's reads, publish and checks.\n"
    "from lakehouse.steps import runtime\n\nruntime.start()"
)
PARAMETERS_SOURCE = "# Dagster replaces this cell with the run's context.\nrun_id = None"


def load(path: Path) -> NotebookNode:
    import nbformat  # with jsonschema, slow to import: only when promoting

    if path.suffix != ".ipynb":
        raise PromoteError(f"{path} is not a notebook (.ipynb).", title="Not a notebook")
    try:
        nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    except FileNotFoundError as e:
        raise PromoteError(f"There is no notebook at {path}.", title="No such notebook") from e
    except (OSError, ValueError) as e:  # unreadable, or not notebook JSON
        raise PromoteError(f"{path} is not a readable notebook: {e}", title="Not a notebook") from e
    language = (nb.metadata.get("kernelspec") or {}).get("language") or (
        nb.metadata.get("language_info") or {}
    ).get("name", "python")
    if language != "python":
        raise PromoteError(f"{path.name} is a {language} notebook; steps run Python.")
    if not code_cells(nb):
        raise PromoteError(f"{path.name} has no code cells.", title="Nothing to run")
    return nb


def code_cells(nb: NotebookNode) -> list[NotebookNode]:
    """The author's code cells (not the ones promote added)."""
    return [c for c in nb.cells if c.cell_type == "code" and not _added(c)]


def _python(source: str) -> ast.Module | None:
    """A cell as Python (IPython magics and shell escapes turned into calls); None if it
    does not parse."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))  # type: ignore[no-untyped-call]
    except SyntaxError:
        return None


def static_reads(nb: NotebookNode) -> list[str]:
    """Lake tables named by SQL written as string literals in the code (the query guard reads
    them): reads the trial did not see, e.g. through `lake.connect_duckdb()`."""
    found: set[str] = set()
    for cell in code_cells(nb):
        tree = _python(cell.source)
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if "select" in text.lower() and "from" in text.lower():
                    found.update(tables_read(text) or [])
    return sorted(found)


def assert_checks(nb: NotebookNode) -> list[str]:
    """The check name of each top-level `assert` in the code cells."""
    names: list[str] = []
    for cell in code_cells(nb):
        tree = _python(cell.source)
        names += [assert_description(a) for a in top_level_asserts(tree)] if tree else []
    return names


def description(nb: NotebookNode) -> str | None:
    """The first paragraph of the first markdown cell (after its heading, if it has one)."""
    for cell in nb.cells:
        if cell.cell_type != "markdown" or not cell.source.strip():
            continue
        paragraphs = [p.strip() for p in cell.source.strip().split("\n\n") if p.strip()]
        heading = paragraphs[0].lstrip("#").strip() if paragraphs[0].startswith("#") else None
        rest = paragraphs[1:] if heading is not None else paragraphs
        text = " ".join((rest[0] if rest else heading or "").split())
        return text[:500] or None
    return None


def _cell(source: str, tag: str) -> NotebookNode:
    import nbformat

    cell = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
    cell.metadata["tags"] = [tag]
    return cell


def trial(nb: NotebookNode) -> NotebookNode:
    """The notebook as the trial runs it: the setup cell first."""
    out = copy.deepcopy(nb)
    out.cells = [_cell(SETUP_SOURCE, SETUP_TAG), *[c for c in out.cells if not _added(c)]]
    return out


def _added(cell: NotebookNode) -> bool:
    return bool(_ADDED_TAGS & set(cell.metadata.get("tags", [])))


def step(nb: NotebookNode, meta: dict[str, Any]) -> NotebookNode:
    """The step Dagster runs: the author's cells without outputs, after a parameters cell
    and the setup cell, with `meta` as its `ratatouille` metadata."""
    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        if _added(cell):
            continue
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    out.cells = [_cell(PARAMETERS_SOURCE, PARAMETERS_TAG), _cell(SETUP_SOURCE, SETUP_TAG), *cells]
    out.metadata["ratatouille"] = meta
    return out


def write(nb: NotebookNode, path: Path) -> None:
    """Write atomically: Dagster's code server may read the folder at any moment."""
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".ipynb.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)  # type: ignore[no-untyped-call]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
