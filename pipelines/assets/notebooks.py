"""Notebook steps: each `notebook_steps_dir/<name>.ipynb` runs through dagstermill.

The notebook uses `lakehouse.connect()` and publishes its own gold table, so it runs the same
in JupyterLab. Its metadata says what it reads and publishes:

    "ratatouille": {"deps": ["silver.orders"], "publishes": "product_performance",
                    "description": "..."}
"""

import json
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import dagstermill

from lakehouse import Settings
from lakehouse.layers import TABLE_LAYERS, check_table_name
from pipelines.automation import GOLD_FOLLOWS_INPUTS
from pipelines.keys import dep_on

OUTPUT_NOTEBOOKS = "output_notebook_io_manager"


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
    asset = dagstermill.define_dagstermill_asset(
        name=name,
        key_prefix=["gold"],
        notebook_path=str(path.resolve()),
        deps=dep_on(deps),  # type: ignore[arg-type]  # passed on to @asset, which takes AssetDep
        description=spec.get("description") or f"Notebook step {path.name}",
        group_name="gold",
        io_manager_key=OUTPUT_NOTEBOOKS,
        save_notebook_on_failure=True,
        metadata={"notebook": str(path)},
        op_tags={"dagster/concurrency_key": f"gold_{name}"},  # one build at a time
    )
    return asset.map_asset_specs(
        lambda s: s.replace_attributes(automation_condition=GOLD_FOLLOWS_INPUTS)
    )


def notebook_assets(settings: Settings) -> Sequence[dg.AssetsDefinition]:
    folder = settings.notebook_steps_dir
    paths = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    return [notebook_asset(p) for p in paths if not p.name.endswith("-checkpoint.ipynb")]


def output_notebooks(settings: Settings) -> dagstermill.ConfigurableLocalOutputNotebookIOManager:
    """Executed notebooks, with their outputs, kept for each run under the state folder."""
    return dagstermill.ConfigurableLocalOutputNotebookIOManager(
        base_dir=str((settings.state_dir / "notebook_runs").resolve())
    )
