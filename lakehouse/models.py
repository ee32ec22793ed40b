"""Gold SQL models: each `<models_dir>/<name>.sql` is one SELECT published as `gold.<name>`.

Optional header comments before the SQL configure the model:

    -- description: Revenue per month and category, completed orders only.
    -- key: month, category
    -- check: unique(month, category)
    -- check: not_null(month)
    -- schedule: 0 6 * * *

Dependencies are read from the tables the SELECT references (DuckDB's own parser, through
the query guard, which also makes sure a model can only read the lake).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from lakehouse import guard, snapshots
from lakehouse.checks import CheckOutcome, CheckSpec
from lakehouse.duck import parquet_scan
from lakehouse.errors import ConfigError, LakehouseError
from lakehouse.layers import TABLE_LAYERS, Layer, check_table_name
from lakehouse.settings import Settings
from lakehouse.snapshots import Snapshot
from lakehouse.storage import Storage

_HEADER_RE = re.compile(r"^--\s*([a-z_]+)\s*:\s*(.*?)\s*$")
_KEYS = {"description", "key", "check", "schedule"}
_CRON_RE = re.compile(r"^(\S+\s+){4}\S+$")


@dataclass(frozen=True)
class Model:
    name: str
    sql: str  # the whole file, header included
    select: str  # the statement alone, ready to wrap in COPY (...)
    path: Path | None = None
    description: str | None = None
    key: tuple[str, ...] = ()
    checks: tuple[CheckSpec, ...] = ()
    schedule: str | None = None
    deps: tuple[tuple[str, str], ...] = field(default=())  # (layer, table) the SELECT reads

    @property
    def all_checks(self) -> tuple[CheckSpec, ...]:
        """Declared checks plus unique/not-null on the key unless already declared."""
        out = list(self.checks)
        if self.key:
            for kind in ("unique", "not_null"):
                spec = CheckSpec(kind, self.key)
                if spec not in out:
                    out.append(spec)
        return tuple(out)


def parse(name: str, text: str, path: Path | None = None) -> Model:
    """A model from its file text; ConfigError with the reason when it is not a valid one."""
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
        checked = guard.check_query(text, tuple(layer.value for layer in TABLE_LAYERS))
    except LakehouseError as e:
        raise ConfigError(f"{where}: {e.msg}", title=f"Invalid model: {e.title}") from e
    if checked.explain:
        raise ConfigError(f"{where}: a model is a SELECT, not an EXPLAIN.", title="Invalid model")
    if (Layer.GOLD.value, name) in checked.tables:
        raise ConfigError(f"{where}: a model cannot read its own table.", title="Invalid model")
    schedule = meta["schedule"][-1] if meta.get("schedule") else None
    if schedule is not None and not _CRON_RE.match(schedule):
        raise ConfigError(
            f"{where}: schedule {schedule!r} is not a cron expression (five fields).",
            title="Invalid model",
        )
    try:
        specs = tuple(CheckSpec.parse(c) for c in meta.get("check", []))
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


@dataclass(frozen=True)
class ModelResult:
    snapshot: Snapshot
    checks: list[CheckOutcome]
    elapsed_s: float


def build(
    settings: Settings,
    storage: Storage,
    con: duckdb.DuckDBPyConnection,
    model: Model,
    run_id: str | None = None,
    inputs: dict[str, str] | None = None,
) -> ModelResult:
    """Publish the model (on `con`, which has the lake's views), then check the new snapshot.

    A model that fails to run publishes nothing: the previous snapshot stays current.
    """
    started = time.monotonic()
    snap = snapshots.publish(
        settings, storage, con, Layer.GOLD, model.name, model.select, run_id, inputs=inputs
    )
    relation = parquet_scan([storage.uri(k) for k in snap.files])
    outcomes = [spec.run(con, relation) for spec in model.all_checks]
    return ModelResult(snap, outcomes, time.monotonic() - started)


def _without_semicolon(sql: str) -> str:
    """The statement without its final `;` (and what follows), ready to wrap in `( )`."""
    tokens = duckdb.tokenize(sql)  # comments are not tokens
    if tokens and sql[tokens[-1][0]] == ";":
        sql = sql[: tokens[-1][0]]
    return sql.rstrip() + "\n"  # a trailing `--` comment must not swallow the closing `)`


def load(folder: Path) -> tuple[list[Model], dict[str, ConfigError]]:
    """Every valid model in the folder, and why each invalid file is not one."""
    models, errors = [], {}
    for path in sorted(folder.glob("*.sql")) if folder.is_dir() else []:
        try:
            models.append(parse(path.stem, path.read_text(encoding="utf-8"), path))
        except (ConfigError, LakehouseError, UnicodeDecodeError, OSError) as e:
            errors[path.name] = (
                e if isinstance(e, ConfigError) else ConfigError(str(e), title="Invalid model")
            )
    return models, errors


def save(
    folder: Path, name: str, sql: str, *, description: str | None = None, overwrite: bool = False
) -> Model:
    """Validate and write `<folder>/<name>.sql` in one step (the app's "save as gold model")."""
    text = sql.strip() + "\n"
    if description and not _HEADER_RE.match(text.splitlines()[0]):
        text = f"-- description: {' '.join(description.split())}\n{text}"
    model = parse(name, text, folder / f"{name}.sql")
    assert model.path is not None
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
