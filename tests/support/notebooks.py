"""Notebooks as an author writes them in JupyterLab: markdown and code cells, no metadata of
ours, no parameters cell."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SETUP = "from lakehouse import connect\n\nlake = connect()"


def write_notebook(path: Path, *cells: str, title: str | None = None) -> Path:
    """Code cells (and a title markdown cell first, if given), kernel python3."""
    heading = [new_markdown_cell(title)] if title else []  # type: ignore[no-untyped-call]
    code = [new_code_cell(c) for c in cells]  # type: ignore[no-untyped-call]
    nb = new_notebook(  # type: ignore[no-untyped-call]
        cells=heading + code,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]
    return path
