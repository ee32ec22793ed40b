"""`ratatouille`: ingest files, list tables, query the lake, check the setup."""

import json
import sys
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pyarrow.csv as pacsv
from pydantic import ValidationError

from lakehouse import demo
from lakehouse.cli.doctor import run_checks
from lakehouse.errors import ConfigError, LakehouseError, QueryError
from lakehouse.ingest.load import IngestResult
from lakehouse.lake import Lakehouse
from lakehouse.layers import TABLE_LAYERS
from lakehouse.passwords import hash_password
from lakehouse.settings import invalid_settings
from lakehouse.tables import migrate
from lakehouse.tables.catalog import TableInfo

# Below this size a progress bar only flickers.
_BAR_MIN_BYTES = 32 * 2**20


@click.group()
@click.version_option(package_name="ratatouille")
def main() -> None:
    """Ratatouille: a lakehouse in a box."""


def _fail(e: LakehouseError, as_json: bool, **extra: Any) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "title": e.title, "error": e.msg, **extra}))
    else:
        click.secho(f"✘ {e.title}", fg="red", bold=True, err=True)
        click.echo(f"  {e.msg}", err=True)


def _summary(r: IngestResult) -> dict[str, Any]:
    m = r.manifest
    return {
        "ok": True,
        "dataset": m.dataset,
        "batch_id": m.batch_id,
        "mode": m.mode,
        "rows": m.rows,
        "bytes": m.source_bytes,
        "format": m.source_format,
        "compression": m.compression,
        "encoding": m.encoding,
        "columns": [{"name": n, "type": t} for n, t in m.schema],
        "renamed": {a: b for a, b in m.columns if a != b},
        "drift": asdict(m.drift),
        "replaced_batches": r.replaced_batches,
        "elapsed_s": round(r.elapsed_s, 3),
    }


def _ingest_one(lake: Lakehouse, path: Path, dataset: str | None, mode: str, as_json: bool) -> bool:
    show_bar = not as_json and sys.stderr.isatty() and path.stat().st_size >= _BAR_MIN_BYTES
    with click.progressbar(
        length=1000, label=path.name, file=sys.stderr, hidden=not show_bar
    ) as bar:

        def progress(stage: str, fraction: float) -> None:
            bar.label = f"{path.name} ({stage})"
            bar.update(int(fraction * 1000) - bar.pos)

        try:
            r = lake.ingest(path, dataset=dataset, mode=mode, progress=progress)  # type: ignore[arg-type]
        except LakehouseError as e:
            _fail(e, as_json, file=str(path))
            return False
    if as_json:
        click.echo(json.dumps({"file": str(path), **_summary(r)}))
    else:
        m = r.manifest
        click.secho(f"✔ {path.name} → bronze.{m.dataset}", fg="green", bold=True)
        click.echo(
            f"  {m.rows:,} rows, {len(m.schema)} columns, batch {m.batch_id} "
            f"({m.mode}, {r.elapsed_s:.1f} s)"
        )
        if m.drift.changed:
            click.secho(f"  schema drift: {m.drift.describe()}", fg="yellow")
    return True


@main.command("ingest")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--dataset", help="Dataset name (default: from each file name).")
@click.option(
    "--mode",
    type=click.Choice(["append", "replace"]),
    default="append",
    show_default=True,
    help="Add a batch, or replace the dataset's batches.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON summary line per file.")
def ingest_cmd(files: tuple[Path, ...], dataset: str | None, mode: str, as_json: bool) -> None:
    """Ingest FILES into bronze (CSV, JSON, Parquet, Arrow, Excel; gzip/zstd too)."""
    lake = _lake(as_json)
    ok = [_ingest_one(lake, f, dataset, mode, as_json) for f in files]
    sys.exit(0 if all(ok) else 1)


@main.command("demo")
@click.option("--force", is_flag=True, help="Load it again even if bronze has it already.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def demo_cmd(force: bool, as_json: bool) -> None:
    """Seed bronze with a small, slightly dirty retail dataset to explore.

    Four datasets: customers, products, orders, order_lines. Nothing happens when they are
    there already (so `make run` can call this on every start), unless --force.
    """
    lake = _lake(as_json)
    try:
        results = demo.seed(lake, force=force, progress=None if as_json else _note)
    except LakehouseError as e:
        _fail(e, as_json)
        sys.exit(1)
    finally:
        lake.close()
    if as_json:
        summaries = [_summary(r) for r in results]
        click.echo(json.dumps({"ok": True, "seeded": bool(results), "datasets": summaries}))
        return
    if not results:
        click.echo(
            f"The demo data is already in bronze ({', '.join(demo.DATASETS)}); "
            "--force loads it again."
        )
    for r in results:
        click.secho(f"✔ {r.manifest.source_name} → bronze.{r.dataset}", fg="green", bold=True)
        click.echo(f"  {r.rows:,} rows, {len(r.manifest.schema)} columns")


@main.command("migrate")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def migrate_cmd(as_json: bool) -> None:
    """Turn silver and gold tables from before Delta Lake (snapshot folders and a pointer) into
    Delta tables, keeping every kept snapshot as a version.

    Safe to run on every start (`make run` does): finished tables are left alone, and a run
    that stopped part-way is completed.
    """
    lake = _lake(as_json)
    try:
        done = migrate.migrate(lake.settings, lake.storage)
    except LakehouseError as e:
        _fail(e, as_json)
        sys.exit(1)
    finally:
        lake.close()
    failed = [m for m in done if m.error]
    if as_json:
        click.echo(json.dumps({"ok": not failed, "tables": [asdict(m) for m in done]}))
    elif not done:
        click.echo("Every silver and gold table is a Delta table already.")
    for m in [] if as_json else done:
        if m.error:
            click.secho(f"✘ {m.table}: {m.error}", fg="red", bold=True, err=True)
            continue
        extra = f", {m.rewritten} rewritten for Delta's types" if m.rewritten else ""
        gone = f", {len(m.skipped)} snapshots had no files left" if m.skipped else ""
        click.secho(f"✔ {m.table} → Delta ({m.versions} versions{extra}{gone})", fg="green")
    if failed:
        sys.exit(1)


def _note(message: str) -> None:
    click.echo(message, err=True)


def _lake(as_json: bool) -> Lakehouse:
    try:
        return Lakehouse()
    except ValidationError as e:
        bad = invalid_settings(e)
        _fail(
            ConfigError(
                f"{bad}. Fix the RATATOUILLE_* variables (see .env.example).",
                title="Invalid settings",
            ),
            as_json,
        )
        sys.exit(2)
    except LakehouseError as e:
        _fail(e, as_json)
        sys.exit(2)


def _table_json(t: TableInfo) -> dict[str, Any]:
    d = asdict(t)
    d["columns"] = [{"name": n, "type": ty} for n, ty in t.columns]
    return d


@main.command("tables")
@click.option("--layer", type=click.Choice([la.value for la in TABLE_LAYERS]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def tables_cmd(layer: str | None, as_json: bool) -> None:
    """List the lake's tables with rows, size and last update."""
    try:
        tables = _lake(as_json).tables(layer)
    except LakehouseError as e:
        _fail(e, as_json)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps([_table_json(t) for t in tables], indent=1))
        return
    if not tables:
        click.echo("The lake is empty. Try: ratatouille ingest some.csv")
        return
    width = max(len(t.qualified_name) for t in tables)
    for t in tables:
        click.echo(
            f"{t.qualified_name:<{width}}  {t.rows:>12,} rows  {len(t.columns):>4} cols  "
            f"{t.size_bytes / 2**20:>9.1f} MB  {t.updated_at}"
        )


@main.command("sql")
@click.argument("query")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    help="Output format (default: table on screen; from the file name with --output).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every row to this CSV or Parquet file (streamed, no row cap).",
)
@click.option("--max-rows", type=click.IntRange(min=1), help="Rows to show (default: row cap).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), help="Seconds.")
def sql_cmd(
    query: str,
    fmt: str | None,
    output: Path | None,
    max_rows: int | None,
    time_limit: float | None,
) -> None:
    """Run a read-only QUERY over the lake's tables (`-` reads it from stdin).

    Tables are bronze.<dataset>, silver.<table> and gold.<table>. Queries run sandboxed, as in
    the SQL playground: one SELECT, no files or URLs, with a time limit and a row cap.
    """
    if query == "-":
        query = sys.stdin.read()
    lake = _lake(fmt == "json")
    try:
        if output is not None:
            _export(lake, query, output, fmt, time_limit)
        else:
            _show(lake, query, fmt or "table", max_rows, time_limit)
    except LakehouseError as e:
        _fail(e, fmt == "json")
        sys.exit(1)
    finally:
        lake.close()


def _export(
    lake: Lakehouse, query: str, output: Path, fmt: str | None, time_limit: float | None
) -> None:
    fmt = fmt or ("parquet" if output.suffix.lower() == ".parquet" else "csv")
    if fmt not in ("csv", "parquet"):
        raise QueryError("--output writes csv or parquet.", title=f"Cannot export {fmt}")
    r = lake.engine.export(query, output, fmt, time_limit_s=time_limit)  # type: ignore[arg-type]
    click.echo(
        f"✔ {r.rows:,} rows → {r.path} ({r.bytes / 2**20:.1f} MB, {r.elapsed_s:.1f} s)", err=True
    )


def _show(
    lake: Lakehouse, query: str, fmt: str, max_rows: int | None, time_limit: float | None
) -> None:
    if fmt == "parquet":
        raise QueryError("Parquet goes to a file: add --output FILE.", title="No output file")
    r = lake.query(query, max_rows=max_rows, time_limit_s=time_limit)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "columns": [{"name": n, "type": t} for n, t in r.columns],
                    "rows": r.table.to_pylist(),
                    "truncated": r.truncated,
                    "truncated_reason": r.truncated_reason,
                    "elapsed_s": round(r.elapsed_s, 4),
                },
                default=_json_value,
            )
        )
        return
    if fmt == "csv":
        sink = pa.BufferOutputStream()
        pacsv.write_csv(r.table, sink)
        click.echo(sink.getvalue().to_pybytes().decode(), nl=False)
    else:
        click.echo(_text_table(r.table))
    click.echo(f"{r.rows:,} rows in {r.elapsed_s:.3f} s", err=True)
    if note := r.truncation_note:
        click.echo(f"{note} Export every row with --output.", err=True)


def _json_value(v: object) -> object:
    """JSON for what Arrow hands back: decimals (and HUGEINT) as numbers, the rest as text."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _text_table(table: pa.Table, width: int = 40) -> str:
    def cell(v: object) -> str:
        text = "NULL" if v is None else str(v)
        return text if len(text) <= width else text[: width - 1] + "…"

    names = table.column_names
    rows = [[cell(v) for v in row.values()] for row in table.to_pylist()]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))]
    lines.append("  ".join("─" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


@main.command("hash-password")
def hash_password_cmd() -> None:
    """Print a hash of the app password for RATATOUILLE_APP_PASSWORD_HASH (asks for it)."""
    password = click.prompt("App password", hide_input=True, confirmation_prompt=True)
    try:
        click.echo(hash_password(password))
    except LakehouseError as e:
        _fail(e, False)
        sys.exit(2)


def _register() -> None:
    from lakehouse.cli.promote import promote_cmd
    from lakehouse.cli.uploads import uploads_cmd

    main.add_command(promote_cmd)
    main.add_command(uploads_cmd)


_register()


@main.command("doctor")
def doctor_cmd() -> None:
    """Check settings, storage, credentials and DuckDB extensions."""
    checks = run_checks()
    for c in checks:
        mark = click.style("✔", fg="green") if c.ok else click.style("✘", fg="red")
        click.echo(f"{mark} {c.name}: {c.detail}")
        if not c.ok and c.fix:
            click.echo(f"    fix: {c.fix}")
    sys.exit(0 if all(c.ok for c in checks) else 1)
