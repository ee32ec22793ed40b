"""Gold SQL models: each `<models_dir>/<name>.sql` is one SELECT published as `gold.<name>`.

Optional header comments before the SQL configure the model:

    -- description: Revenue per month and category, completed orders only.
    -- key: month, category
    -- check: unique(month, category)
    -- check: not_null(month)
    -- schedule: 0 6 * * *

Dependencies are read from the tables the SELECT references (DuckDB's own parser, through
the query guard, which also makes sure a model reads only the query layers). Model files may
come from app users, so a model is untrusted SQL: the guard refuses it at save and load, and
it builds on a locked connection (`locked_connection`) that can read the query layers and
nothing else, so a guard bug alone reaches neither the host's files nor the network.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from croniter import croniter

from lakehouse import duck
from lakehouse.duck import parquet_scan
from lakehouse.errors import ConfigError, LakehouseError, QueryError
from lakehouse.layers import TABLE_LAYERS, Layer, check_table_name
from lakehouse.query import guard
from lakehouse.query.sandbox import query_settings
from lakehouse.settings import Settings
from lakehouse.storage import Storage, open_storage
from lakehouse.tables import catalog, snapshots
from lakehouse.tables.catalog import TableInfo
from lakehouse.tables.snapshots import Snapshot
from lakehouse.transform.checks import DataCheck, DataCheckResult

_HEADER_RE = re.compile(r"^--\s*([a-z_]+)\s*:\s*(.*?)\s*$")
_KEYS = {"description", "key", "check", "schedule"}
_CRON_RE = re.compile(r"^(\S+\s+){4}\S+$")
ALL_LAYERS = tuple(layer.value for layer in TABLE_LAYERS)


@dataclass(frozen=True)
class Model:
    name: str
    sql: str  # the whole file, header included
    select: str  # the statement alone, ready to wrap in COPY (...)
    path: Path | None = None
    description: str | None = None
    key: tuple[str, ...] = ()
    checks: tuple[DataCheck, ...] = ()
    schedule: str | None = None
    deps: tuple[tuple[str, str], ...] = field(default=())  # (layer, table) the SELECT reads

    @property
    def all_checks(self) -> tuple[DataCheck, ...]:
        """Declared checks plus unique/not-null on the key unless already declared."""
        out = list(self.checks)
        if self.key:
            for kind in ("unique", "not_null"):
                spec = DataCheck(kind, self.key)
                if spec not in out:
                    out.append(spec)
        return tuple(out)


def parse(
    name: str, text: str, path: Path | None = None, layers: tuple[str, ...] = ALL_LAYERS
) -> Model:
    """A model from its file text; ConfigError with the reason when it is not a valid one.
    `layers` are those it may read: the query layers (`settings.query_layers`)."""
    check_table_name(name, "model")
    meta: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        m = _HEADER_RE.match(line)
        if not m:
            if line.startswith("--"):
                continue
            break
        if m.group(1) in _KEYS:
            meta.setdefault(m.group(1), []).append(m.group(2))
    where = f"model {name!r}" + (f" ({path})" if path else "")
    try:
        checked = guard.check_query(text, tuple(layers))
    except LakehouseError as e:
        raise ConfigError(f"{where}: {e.msg}", title=f"Invalid model: {e.title}") from e
    if checked.explain:
        raise ConfigError(f"{where}: a model is a SELECT, not an EXPLAIN.", title="Invalid model")
    if (Layer.GOLD.value, name) in checked.tables:
        raise ConfigError(f"{where}: a model cannot read its own table.", title="Invalid model")
    schedule = meta["schedule"][-1] if meta.get("schedule") else None
    if schedule is not None and not is_cron(schedule):
        raise ConfigError(
            f"{where}: schedule {schedule!r} is not a valid cron expression (five fields: "
            "minute hour day-of-month month day-of-week, e.g. `0 6 * * *`).",
            title="Invalid model",
        )
    try:
        specs = tuple(DataCheck.parse(c) for c in meta.get("check", []))
    except ConfigError as e:
        raise ConfigError(f"{where}: {e.msg}", title=e.title) from e
    key = tuple(k.strip() for k in ",".join(meta.get("key", [])).split(",") if k.strip())
    return Model(
        name=name,
        sql=text,
        select=_without_semicolon(checked.sql),
        path=path,
        description=" ".join(meta.get("description", [])) or None,
        key=key,
        checks=specs,
        schedule=schedule,
        deps=tuple(sorted(checked.tables)),
    )


def check_layers(model: Model, layers: tuple[str, ...]) -> None:
    """ConfigError unless the model's SELECT reads only tables of `layers`."""
    try:
        guard.check_query(model.select, tuple(layers))
    except LakehouseError as e:
        raise ConfigError(
            f"model {model.name!r}: {e.msg}", title=f"Invalid model: {e.title}"
        ) from e


def is_cron(text: str) -> bool:
    """Five cron fields a scheduler can run: parsed by croniter (what Dagster runs schedules
    with), so `61 * * * *`, `* * * * foo` or `0 0 31 2 *` (never) are refused."""
    if not _CRON_RE.match(text) or not croniter.is_valid(text):
        return False
    fields = croniter.expand(text)[0]
    never = fields[3] == [2] and len(fields[2]) == 1 and fields[2][0] in {30, 31}
    return len(fields) == 5 and not never


@dataclass(frozen=True)
class ModelResult:
    snapshot: Snapshot
    checks: list[DataCheckResult]
    elapsed_s: float


def build(
    settings: Settings,
    storage: Storage,
    con: duckdb.DuckDBPyConnection,
    model: Model,
    run_id: str | None = None,
    inputs: dict[str, str] | None = None,
    staging: Path | None = None,
) -> ModelResult:
    """Publish the model's SELECT, run on `con` (from `locked_connection`), then check the new
    version on `con` too.

    The locked connection writes the Parquet parts into `staging` (the one folder it may write
    to, private to this build); publish uploads and commits them on the trusted side. A model
    that fails to run publishes nothing: the previous version stays current.
    """
    started = time.monotonic()
    title = f"Could not build {Layer.GOLD.value}.{model.name}"
    try:
        snap = snapshots.publish(
            settings, storage, con, Layer.GOLD, model.name, model.select, run_id,
            inputs=inputs, sql=model.select, staging=staging,
        )  # fmt: skip
    except QueryError as e:
        if isinstance(e.__cause__, duckdb.PermissionException):
            raise QueryError(
                f"A model reads the lake's tables only, not files, URLs or settings. ({e})",
                title=f"{title}: access denied",
            ) from e.__cause__
        raise
    relation = parquet_scan([storage.uri(k) for k in snap.files])
    outcomes = [spec.run(con, relation) for spec in model.all_checks]
    return ModelResult(snap, outcomes, time.monotonic() - started)


@contextmanager
def locked_connection(
    settings: Settings,
    storage: Storage,
    tables: list[TableInfo],
    name: str,
    staging: Path | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The locked connection a model builds on: views over the query layers' `tables`, and
    reads allowed under the query layers and the model's own gold table (its checks read the
    new version) — on S3 with the read-only query key when one is set. With `staging`, it may
    also write under that folder (the build's own, where its Parquet parts go)."""
    layers = settings.query_layers
    con = duck.connect(query_settings(settings))
    try:
        # Lossless: UUID, HUGEINT and the like keep their types on their way to publish.
        con.execute("SET arrow_lossless_conversion = true")
        roots = [storage.uri(f"{layer}/_").removesuffix("_") for layer in layers]
        roots.append(storage.uri(f"{Layer.GOLD.value}/{name}/_").removesuffix("_"))
        if staging is not None:
            roots.append(f"{staging}/")
        duck.lock(con, roots)
        for layer in layers:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
        for t in tables:
            if t.layer in layers:
                duck.create_view(con, t.layer, t.name, t.scan_sql)
        yield con
    finally:
        con.close()


def _without_semicolon(sql: str) -> str:
    """The statement without its final `;` (and what follows), ready to wrap in `( )`."""
    tokens = duckdb.tokenize(sql)  # comments are not tokens
    if tokens and sql[tokens[-1][0]] == ";":
        sql = sql[: tokens[-1][0]]
    return sql.rstrip() + "\n"  # a trailing `--` comment must not swallow the closing `)`


def load(
    folder: Path, layers: tuple[str, ...] = ALL_LAYERS
) -> tuple[list[Model], dict[str, ConfigError]]:
    """Every valid model in the folder, and why each invalid file is not one."""
    models, errors = [], {}
    for path in sorted(folder.glob("*.sql")) if folder.is_dir() else []:
        try:
            models.append(parse(path.stem, path.read_text(encoding="utf-8"), path, layers))
        except (ConfigError, LakehouseError, UnicodeDecodeError, OSError) as e:
            errors[path.name] = (
                e if isinstance(e, ConfigError) else ConfigError(str(e), title="Invalid model")
            )
    return models, errors


def _bind_locked(settings: Settings, storage: Storage, model: Model) -> None:
    """Bind the SELECT on the locked connection, so a file or URL that got past the guard is
    refused at save, not at the first build. Other binding errors (a table not there yet) are
    left to the build to report."""
    with locked_connection(settings, storage, catalog.list_tables(storage), model.name) as con:
        try:
            con.execute(f"DESCRIBE {model.select}")
        except duckdb.PermissionException as e:
            raise ConfigError(
                f"model {model.name!r} reads more than the lake's tables. ({e})",
                title="Invalid model: access denied",
            ) from e
        except duckdb.Error:
            pass


def taken_names(settings: Settings, storage: Storage, others: Iterable[str] = ()) -> dict[str, str]:
    """Gold table name → what else makes that table: notebook steps (their `publishes`),
    gold tables in the lake that no model file builds (Python assets, notebooks, tables
    published by hand), and `others`: gold assets other than SQL models that the caller knows
    of (from Dagster: a Python asset not yet materialized is in no catalog)."""
    files = (
        {p.stem for p in settings.models_dir.glob("*.sql")}
        if settings.models_dir.is_dir()
        else set()
    )
    taken = {n: f"the asset gold/{n}" for n in others}
    taken |= {
        t.name: "an existing gold table that no model file builds"
        for t in catalog.list_tables(storage, Layer.GOLD)
        if t.name not in files
    }
    return taken | notebook_tables(settings.notebook_steps_dir)


def read(settings: Settings, name: str) -> str:
    """The text of the model file `<models_dir>/<name>.sql` (to open it in an editor)."""
    path = settings.models_dir / f"{check_table_name(name, 'model')}.sql"
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(
            f"There is no model {name!r} (no {path.name} in {settings.models_dir}).",
            title="No such model",
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {e}", title="Could not read the model") from e


def notebook_tables(folder: Path) -> dict[str, str]:
    """Gold table → `the notebook step <file>` for each notebook step that publishes one."""
    out = {}
    for path in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
        try:
            meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
            table = meta.get("ratatouille", {}).get("publishes") or path.stem
        except (OSError, ValueError, AttributeError):
            table = path.stem
        out[str(table)] = f"the notebook step {path.name}"
    return out


def save(
    settings: Settings,
    name: str,
    sql: str,
    *,
    description: str | None = None,
    overwrite: bool = False,
    storage: Storage | None = None,
    taken: Iterable[str] = (),
) -> Model:
    """Validate and write `<models_dir>/<name>.sql` in one step (the app's "save as gold
    model"): it may read the query layers only, and its name must be no other asset's table
    (`taken`: gold asset names the caller knows of besides the lake's and notebook steps')."""
    text = sql.strip() + "\n"
    if description and not _HEADER_RE.match(text.splitlines()[0]):
        text = f"-- description: {' '.join(description.split())}\n{text}"
    folder = settings.models_dir
    model = parse(name, text, folder / f"{name}.sql", settings.query_layers)
    assert model.path is not None
    storage = storage or open_storage(settings)
    holder = taken_names(settings, storage, taken).get(name)
    if holder:
        raise ConfigError(
            f"gold.{name} is made by {holder}; a model of that name would take its place. "
            "Choose another name.",
            title="Name taken",
        )
    _bind_locked(settings, storage, model)
    if model.path.exists() and not overwrite:
        raise ConfigError(
            f"A model named {name!r} already exists; choose another name or overwrite it.",
            title="Model exists",
        )
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, model.path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return model
