"""Notebook steps: each `notebook_steps_dir/<name>.ipynb` runs through dagstermill.

`ratatouille promote` (or JupyterLab's "Promote to pipeline") writes them from a notebook
that works; hand-written ones work the same. The notebook uses `lakehouse.connect()` and
publishes its own gold table, so it runs the same in JupyterLab. Its metadata says what it
reads, publishes and checks:

    "ratatouille": {"deps": ["silver.orders"], "publishes": "product_performance",
                    "description": "...", "checks": ["revenue is never negative"]}

In a run, the kernel's `lake` records its `lake.check(...)` calls and top-level asserts
(the cell promote adds sets that up); each declared check becomes an asset check result.

dagstermill (and, through it, nbformat and jsonschema) takes 1.4 s to import: it is imported
when a notebook step runs, not whenever a run process loads the code.
"""

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from lakehouse import Settings, StepContext, read_events
from lakehouse.layers import TABLE_LAYERS, check_table_name
from pipelines.assets.gold import check_name
from pipelines.automation import GOLD_FOLLOWS_INPUTS
from pipelines.keys import dep_on, gold_key
from pipelines.notebook_runs import OUTPUT_NOTEBOOKS, run_notebook


def step_checks(spec: dict[str, Any]) -> dict[str, str]:
    """Dagster check name → the notebook's check description (`lake.check`, `assert`)."""
    out: dict[str, str] = {}
    for description in spec.get("checks") or []:
        name = base = check_name(str(description)) or "check"
        n = 1
        while name in out:
            n += 1
            name = f"{base}_{n}"
        out[name] = str(description)
    return out


def check_results(
    key: dg.AssetKey, checks: dict[str, str], events: list[dict[str, Any]]
) -> Iterator[dg.AssetCheckResult]:
    """One result per declared check: the run's last evaluation of it, or failed when the
    notebook never reached it."""
    seen = {e["name"]: e for e in events if e.get("event") == "check"}
    for name, description in checks.items():
        e = seen.get(description)
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=name,
            passed=bool(e and e["passed"]),
            description=description,
            metadata={
                "seen": (e or {}).get("detail") or "not evaluated: the notebook stopped first"
            },
        )


def notebook_asset(path: Path, settings: Settings | None = None) -> dg.AssetsDefinition:
    settings = settings or Settings()
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
    key = gold_key(name)
    checks = step_checks(spec)
    runs = (settings.state_dir / "notebook_runs").resolve()
    metadata: dict[str, Any] = {"notebook": dg.MetadataValue.path(str(path))}
    if spec.get("source"):
        metadata["source_notebook"] = dg.MetadataValue.path(str(spec["source"]))

    @dg.asset(
        key=key,
        deps=dep_on(deps),
        check_specs=[dg.AssetCheckSpec(n, asset=key, description=d) for n, d in checks.items()],
        description=spec.get("description") or f"Notebook step {path.name}",
        group_name="gold",
        io_manager_key=OUTPUT_NOTEBOOKS,
        kinds={"ipynb", "duckdb"},
        automation_condition=GOLD_FOLLOWS_INPUTS,
        pool=f"gold_{name}",  # one build of a table at a time
        metadata=metadata,
        op_tags={"notebook_path": notebook},
    )
    def _notebook(context: dg.AssetExecutionContext) -> Iterator[Any]:
        record = runs / context.run.run_id / f"{name}.events.jsonl"
        record.parent.mkdir(parents=True, exist_ok=True)
        # The kernel inherits it: its `lake` records checks and may publish gold.<name> only.
        step_env = StepContext("run", str(record), context.run.run_id, table=name).env()
        saved = {k: os.environ.get(k) for k in step_env}
        failed: Exception | None = None
        os.environ.update(step_env)
        try:
            yield from run_notebook(context, name, notebook)
        except Exception as e:  # noqa: BLE001 -- re-raised once the checks it reached are reported
            failed = e
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        yield from check_results(key, checks, read_events(record))
        if failed is not None:
            raise failed

    return _notebook


def notebook_assets(settings: Settings) -> Sequence[dg.AssetsDefinition]:
    folder = settings.notebook_steps_dir
    paths = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    return [notebook_asset(p, settings) for p in paths if not p.name.endswith("-checkpoint.ipynb")]
