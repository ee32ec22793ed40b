"""`promote`: a notebook that works becomes a pipeline step, with nothing written by hand.

The notebook runs once in a fresh kernel with a recording `lake` (`lakehouse.steps.context`)
whose publishes go to a scratch lake; what it read, published and checked gives the step's
metadata (string SQL in its code, read by the query guard, adds reads the trial could not
see). Refusals come before anything is written; then the step file is written, Dagster
reloads its code and builds the new asset once. Its later builds follow its inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakehouse.ids import new_id
from lakehouse.layers import check_table_name
from lakehouse.settings import Settings
from lakehouse.steps import notebook
from lakehouse.steps.context import PromoteError, StepContext, read_events
from lakehouse.steps.dagster import Dagster, DagsterRefused, DagsterUnreachable, GoldAsset
from lakehouse.storage import Storage
from lakehouse.storage.staging import folder as staging_folder
from lakehouse.tables import catalog

KERNEL = "ratatouille-step"
# A dry run's trial serves the promotion that follows it (JupyterLab's "Make it live") if
# the notebook has not changed since: it runs once, not twice.
TRIAL_REUSE_S = 900


@dataclass(frozen=True)
class Promotion:
    """What promotion inferred and did."""

    name: str  # the step's file name, without .ipynb
    table: str  # gold.<table>
    asset_key: list[str]
    reads: list[str]
    checks: list[str]
    run_s: float  # the trial's run time
    rows: int  # rows the trial published
    source: str
    dry_run: bool
    step_path: str | None = None
    replaced: bool = False  # an earlier promotion of this notebook was updated
    dagster: str = ""  # what Dagster did, or why it did nothing
    run_id: str | None = None  # the build Dagster started
    failed_checks: list[str] = field(default_factory=list)  # in the trial

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Trial:
    events: list[dict[str, Any]]
    run_s: float


def promote(
    settings: Settings, storage: Storage, path: Path, *, name: str | None = None, dry_run: bool
) -> Promotion:
    path = path.expanduser().resolve()
    steps_dir = settings.notebook_steps_dir.resolve()
    if path.parent == steps_dir:
        raise PromoteError(
            f"{path.name} is a pipeline step already (promote writes the files in "
            f"{steps_dir}); promote the notebook it came from instead.",
            title="Already a step",
        )
    nb = notebook.load(path)
    if name is not None:
        check_table_name(name, "step name")
    trial = None if dry_run else _earlier_trial(settings, path)
    if trial is None:
        trial = run_trial(settings, path, nb)
        _keep_trial(settings, path, trial)
    table, rows = _published(trial.events, path.name)
    _refuse_outside_reads(trial.events, path.name)
    step_name = name or table
    reads = _reads(storage, trial.events, nb, table)
    checks, failed = _checks(trial.events, nb)
    steps, replaced_paths = _check_names(settings, path, table, step_name)
    result = Promotion(
        name=step_name,
        table=f"gold.{table}",
        asset_key=["gold", table],
        reads=reads,
        checks=checks,
        run_s=round(trial.run_s, 2),
        rows=rows,
        source=str(path),
        dry_run=dry_run,
        replaced=bool(replaced_paths),
        failed_checks=failed,
    )
    if dry_run:
        return result
    step_path = steps / f"{step_name}.ipynb"
    meta = {
        "deps": reads,
        "publishes": table,
        "description": notebook.description(nb) or f"Promoted from {path.name}",
        "checks": checks,
        "source": _shown(path, steps.parent),
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "trial": {"run_s": result.run_s, "rows": rows},
    }
    notebook.write(notebook.step(nb, meta), step_path)
    for old in replaced_paths:
        if old != step_path:  # promoted under another name before
            old.unlink(missing_ok=True)
    said, run_id = _go_live(settings, table)
    return Promotion(
        **{**asdict(result), "step_path": str(step_path), "dagster": said, "run_id": run_id}
    )


def run_trial(settings: Settings, path: Path, nb: Any) -> Trial:
    """Run the notebook in a fresh kernel as a trace-mode step; its events and run time."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    limit = settings.promote_time_limit_s
    with staging_folder(settings, f"promote-{new_id()}") as work:
        work = work.resolve()  # the kernel's cwd is the notebook's folder
        record = work / "events.jsonl"
        ctx = StepContext("trace", str(record), work.name, str(work / "lake"))
        # This Python, whatever kernels the machine has installed under the name python3.
        spec = work / "kernels" / KERNEL
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "Ratatouille", "language": "python"})
        )
        km = KernelManager(  # type: ignore[no-untyped-call]
            kernel_name=KERNEL,
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]),
        )
        deadline: list[float] = []  # the clock starts at the first cell, not the kernel's start

        def time_left(_cell: Any) -> int:
            deadline[:] = deadline or [time.monotonic() + limit]
            return max(1, int(deadline[0] - time.monotonic()))

        client = NotebookClient(
            notebook.trial(nb),
            km=km,
            timeout_func=time_left,
            resources={"metadata": {"path": str(path.parent)}},
        )
        started = time.monotonic()
        try:
            client.execute(env={**os.environ, **settings.as_env(), **ctx.env()})
        except CellTimeoutError as e:
            raise PromoteError(
                f"{path.name} ran for more than {limit:g} s (RATATOUILLE_PROMOTE_TIME_LIMIT_S) "
                "and was stopped. A step should finish well within that: filter or aggregate "
                "in SQL, or raise the limit.",
                title="The notebook took too long",
            ) from e
        except DeadKernelError as e:
            raise PromoteError(
                f"The kernel running {path.name} died ({e}); it probably ran out of memory.",
                title="The notebook failed",
            ) from e
        except CellExecutionError as e:
            raise PromoteError(
                _failure(e, client.nb, path.name), title="The notebook failed"
            ) from e
        return Trial(read_events(record), time.monotonic() - started)


def _trial_file(settings: Settings, path: Path) -> Path:
    digest = hashlib.sha256(path.read_bytes() + str(settings.as_env()).encode()).hexdigest()
    return settings.state_dir / "promote" / f"{digest[:32]}.json"


def _keep_trial(settings: Settings, path: Path, trial: Trial) -> None:
    out = _trial_file(settings, path)
    out.parent.mkdir(parents=True, exist_ok=True)
    for old in out.parent.glob("*.json"):  # only the newest few matter
        if time.time() - old.stat().st_mtime > TRIAL_REUSE_S:
            old.unlink(missing_ok=True)
    tmp = out.with_suffix(f".tmp-{new_id()}")
    tmp.write_text(json.dumps(asdict(trial)))
    tmp.replace(out)


def _earlier_trial(settings: Settings, path: Path) -> Trial | None:
    try:
        found = _trial_file(settings, path)
        if time.time() - found.stat().st_mtime > TRIAL_REUSE_S:
            return None
        return Trial(**json.loads(found.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _failure(e: Any, nb: Any, name: str) -> str:
    """Which cell failed and why, in one message."""
    cells = nb.cells[1:]  # after the setup cell the trial adds
    where = next(
        (
            i
            for i, c in enumerate(cells, 1)
            if any(o.get("output_type") == "error" for o in c.get("outputs", []))
        ),
        None,
    )
    detail = f"{e.ename}: {e.evalue}".strip(": ") if getattr(e, "ename", None) else str(e)
    cell = f"cell {where} " if where else ""
    return (
        f"{name} failed when run top to bottom in a fresh kernel: {cell}raised {detail}. "
        "Fix it (Restart Kernel and Run All Cells shows the same) and promote again."
    )[:2000]


def _published(events: list[dict[str, Any]], name: str) -> tuple[str, int]:
    tables = sorted({e["table"] for e in events if e["event"] == "publish"})
    if not tables:
        raise PromoteError(
            f"{name} ran but published nothing. A step publishes one gold table: end it with "
            '`lake.publish("gold", "<name>", <SQL or Arrow>)`.',
            title="The notebook publishes nothing",
        )
    if len(tables) > 1:
        raise PromoteError(
            f"{name} published {len(tables)} tables ({', '.join(tables)}); a step publishes "
            "one. Split it into one notebook per table.",
            title="The notebook publishes more than one table",
        )
    rows = [e.get("rows", 0) for e in events if e["event"] == "publish"][-1]
    return tables[0].removeprefix("gold."), int(rows or 0)


def _refuse_outside_reads(events: list[dict[str, Any]], name: str) -> None:
    outside = list(dict.fromkeys(e["what"] for e in events if e["event"] == "outside"))
    if outside:
        shown = "; ".join(outside[:5]) + (f" (and {len(outside) - 5} more)" if outside[5:] else "")
        raise PromoteError(
            f"{name} reads files outside the lake: {shown}. The pipeline runs where those "
            "may not exist: ingest them (upload, the landing folder or `ratatouille ingest`) "
            "and read the table instead.",
            title="The notebook reads files outside the lake",
        )


def _reads(storage: Storage, events: list[dict[str, Any]], nb: Any, table: str) -> list[str]:
    traced = {t for e in events if e["event"] == "read" for t in e["tables"]}
    candidates = (traced | set(notebook.static_reads(nb))) - {f"gold.{table}"}
    wanted = [tuple(t.split(".", 1)) for t in sorted(candidates)]
    found = catalog.find_tables(storage, [(lay, n) for lay, n in wanted])
    return [f"{lay}.{n}" for (lay, n), info in found.items() if info is not None]


def _checks(events: list[dict[str, Any]], nb: Any) -> tuple[list[str], list[str]]:
    """Every check the notebook made or asserts, and those that failed in the trial."""
    last: dict[str, bool] = {}
    for e in events:
        if e["event"] == "check":
            last[e["name"]] = bool(e["passed"])
    names = list(dict.fromkeys([*last, *notebook.assert_checks(nb)]))
    return names, [n for n, ok in last.items() if not ok]


def _shown(path: Path, notebooks: Path) -> str:
    return str(path.relative_to(notebooks)) if path.is_relative_to(notebooks) else str(path)


def _check_names(
    settings: Settings, source: Path, table: str, step_name: str
) -> tuple[Path, list[Path]]:
    """The steps folder, and the steps this promotion replaces; refuse a name another model,
    step or asset has."""
    steps = settings.notebook_steps_dir.resolve()
    if (settings.models_dir / f"{table}.sql").exists():
        raise PromoteError(
            f"gold.{table} is made by the SQL model {table}.sql; publish another name.",
            title="Name taken",
        )
    replaced: list[Path] = []
    for p in sorted(steps.glob("*.ipynb")) if steps.is_dir() else []:
        meta = _step_meta(p)
        makes = str(meta.get("publishes") or p.stem)
        if makes != table and p.stem != step_name:
            continue
        src = meta.get("source")
        same = src is not None and (steps.parent / str(src)).resolve() == source
        if not same:
            what = f"gold.{table} is made by" if makes == table else f"{p.name} is"
            raise PromoteError(
                f"{what} the notebook step {p.name} (from {src or 'a hand-written step'}); "
                "publish another table or use --name.",
                title="Name taken",
            )
        replaced.append(p)
    for asset in _dagster_gold(settings):
        if asset.table == table and "ipynb" not in asset.kinds and "sql" not in asset.kinds:
            raise PromoteError(
                f"gold.{table} is made by the pipeline asset gold/{table} "
                f"({', '.join(asset.kinds) or 'Python'}); publish another name.",
                title="Name taken",
            )
    return steps, replaced


def _step_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        out = meta.get("ratatouille", {})
        return out if isinstance(out, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _dagster_gold(settings: Settings) -> list[GoldAsset]:
    """Dagster's gold assets (Python assets live only there); none if it is not running."""
    try:
        return Dagster(settings.dagster_url).gold_assets()
    except (DagsterUnreachable, DagsterRefused):
        return []


def _go_live(settings: Settings, table: str) -> tuple[str, str | None]:
    dagster = Dagster(settings.dagster_url)
    try:
        dagster.reload()
        run_id = dagster.materialize(table)
    except DagsterUnreachable as e:
        return f"{e}: the step is saved and appears when Dagster starts.", None
    except DagsterRefused as e:
        return f"The step is saved, but Dagster refused it: {e}", None
    return f"Dagster reloaded its code; run {run_id[:8]} builds gold/{table}.", run_id
