"""Notebook steps: each `notebook_steps_dir/<name>.ipynb` runs through dagstermill.

The notebook uses `lakehouse.connect()` and publishes its own gold table, so it runs the same
in JupyterLab. Its metadata says what it reads and publishes:

    "ratatouille": {"deps": ["silver.orders"], "publishes": "product_performance",
                    "description": "..."}

dagstermill (and, through it, nbformat and jsonschema) takes 1.4 s to import: it is imported
when a notebook step runs, not whenever a run process loads the code.
"""

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from lakehouse import Settings
from lakehouse.layers import TABLE_LAYERS, check_table_name
from pipelines.automation import GOLD_FOLLOWS_INPUTS
from pipelines.keys import dep_on, gold_key
from pipelines.notebook_runs import OUTPUT_NOTEBOOKS


def notebook_asset(path: Path) -> dg.AssetsDefinition:
    meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    spec = meta.get("ratatouille", {})
    name = check_table_name(spec.get("publishes") or path.stem, "notebook table")
    deps = []
    for ref in spec.get("deps", []):
        layer, _, table = str(ref).partition(".")
        if layer not in {lay.value for lay in TABLE_LAYERS} or not table:
            raise ValueError(f"{path.name}: dependency {ref!r} is not `<layer>.<table>`")
        deps.append((layer, check_table_name(table)))
    notebook = str(path.resolve())

    @dg.asset(
        key=gold_key(name),
        deps=dep_on(deps),
        description=spec.get("description") or f"Notebook step {path.name}",
        group_name="gold",
        io_manager_key=OUTPUT_NOTEBOOKS,
        kinds={"ipynb", "duckdb"},
        automation_condition=GOLD_FOLLOWS_INPUTS,
        pool=f"gold_{name}",  # one build of a table at a time
        metadata={"notebook": str(path)},
        op_tags={"notebook_path": notebook},
    )
    def _notebook(context: dg.AssetExecutionContext) -> Iterator[Any]:
        # Private to dagstermill 0.29 (pinned): the body of define_dagstermill_asset.
        from dagstermill.asset_factory import _make_dagstermill_asset_compute_fn

        run = _make_dagstermill_asset_compute_fn(name, notebook, save_notebook_on_failure=True)
        yield from run(context.op_execution_context)

    return _notebook


def notebook_assets(settings: Settings) -> Sequence[dg.AssetsDefinition]:
    folder = settings.notebook_steps_dir
    paths = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    return [notebook_asset(p) for p in paths if not p.name.endswith("-checkpoint.ipynb")]
