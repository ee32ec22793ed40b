"""`ratatouille promote`: a notebook becomes a pipeline step."""

import json
import sys
from pathlib import Path

import click

from lakehouse.errors import LakehouseError
from lakehouse.lake import Lakehouse
from lakehouse.steps.promote import Promotion


def _show(p: Promotion) -> None:
    click.echo(f"{p.source}: ran in {p.run_s:g} s in a fresh kernel")
    click.echo(f"  reads     {', '.join(p.reads) or 'no lake table'}")
    click.echo(f"  publishes {p.table} ({p.rows:,} rows in the trial)")
    for name in p.checks:
        mark = "✘" if name in p.failed_checks else "✔"
        click.echo(f"  check     {mark} {name}")
    if p.failed_checks:
        click.secho(
            f"  {len(p.failed_checks)} check(s) failed in the trial; they will show as failed "
            "asset checks until the data passes them.",
            fg="yellow",
        )


@click.command("promote")
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--name", help="The step's name (default: the table it publishes).")
@click.option("--dry-run", is_flag=True, help="Run it and show what was inferred; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before making it live.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def promote_cmd(notebook: Path, name: str | None, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Make NOTEBOOK a pipeline step: run it once in a fresh kernel, infer the tables it
    reads, the gold table it publishes and its checks, write the step, reload Dagster and
    start its first build. At a terminal it shows what it inferred and asks first. Prints
    the asset key; exit code 2 if it cannot be promoted."""
    from lakehouse.cli.main import _fail, _lake

    lake: Lakehouse = _lake(as_json)
    ask = not (dry_run or yes or as_json) and sys.stdin.isatty()
    try:
        if ask:  # the trial runs once: the promotion below reuses it
            _show(lake.promote(notebook, name=name, dry_run=True))
            if not click.confirm("Make it live?", default=True):
                click.echo("Nothing was written.")
                return
        p = lake.promote(notebook, name=name, dry_run=dry_run)
    except LakehouseError as e:
        _fail(e, as_json, notebook=str(notebook))
        sys.exit(2)
    finally:
        lake.close()
    if as_json:
        click.echo(json.dumps({"ok": True, **p.to_json()}))
        return
    if not ask:
        _show(p)
    if dry_run:
        click.echo("Dry run: nothing was written.")
        return
    verb = "updated" if p.replaced else "written"
    click.echo(f"  step      {p.step_path} ({verb})")
    click.secho(f"  dagster   {p.dagster}", fg="green" if p.run_id else "yellow")
    click.echo("/".join(p.asset_key))
