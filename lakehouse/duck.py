"""DuckDB connections: in-memory, extensions loaded offline from their PyPI packages."""

import contextlib
import functools
import importlib.util
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import duckdb

from lakehouse.errors import ConfigError
from lakehouse.layers import quote_ident, quote_literal
from lakehouse.settings import Settings


@functools.cache
def extension_path(name: str) -> Path:
    """The extension binary shipped by the `duckdb-extension-<name>` wheel."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"The DuckDB extension {name!r} is not installed. "
            f"Run `pip install duckdb-extension-{name}=={duckdb.__version__}`.",
            title="DuckDB extension missing",
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(root.glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))
    if not found:
        raise ConfigError(
            f"duckdb-extension-{name} does not match duckdb {duckdb.__version__}; "
            f"pin both to the same version.",
            title="DuckDB extension version mismatch",
        )
    return found[0]


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute(f"LOAD {quote_literal(str(extension_path(name)))}")


def s3_secret_sql(settings: Settings, *, name: str = "lake") -> str:
    """CREATE SECRET for the lake's S3 endpoint; every value passes through quote_literal."""
    secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else ""
    parts = {
        "TYPE": "s3",
        "KEY_ID": quote_literal(settings.s3_access_key or ""),
        "SECRET": quote_literal(secret),
        "REGION": quote_literal(settings.s3_region),
        "URL_STYLE": quote_literal(settings.s3_url_style),
        "USE_SSL": "true" if settings.s3_use_ssl else "false",
    }
    if settings.s3_endpoint:
        parts["ENDPOINT"] = quote_literal(settings.s3_endpoint)
    body = ", ".join(f"{k} {v}" for k, v in parts.items())
    return f"CREATE OR REPLACE SECRET {name} ({body})"


# A spill folder of a dead process untouched this long is a crash's leftover. (The age keeps
# folders of live processes in other PID namespaces, e.g. containers sharing the folder.)
_SPILL_ORPHAN_S = 3600
_SWEPT: set[Path] = set()


def _sweep_spill(root: Path) -> None:
    now = time.time()
    for folder in root.iterdir():
        pid, _, _ = folder.name.partition("-")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            newest = max([folder.stat().st_mtime, *(f.stat().st_mtime for f in folder.iterdir())])
        except OSError:
            continue  # removed meanwhile
        if now - newest > _SPILL_ORPHAN_S:
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


DuckConfig = dict[str, str | bool | int | float | list[str]]


def base_config(memory_limit: str, spill: Path, threads: int | None) -> DuckConfig:
    """Every connection's config: no extension installed or loaded behind the lake's back, its
    memory limit, its own spill folder, and its threads (DuckDB's default when None)."""
    config: DuckConfig = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "memory_limit": memory_limit,
        "temp_directory": str(spill),
    }
    if threads:
        config["threads"] = threads
    return config


def create_view(con: duckdb.DuckDBPyConnection, layer: str, name: str, scan_sql: str) -> None:
    """`<layer>.<name>` as a view over a table's scan (its current snapshot's files)."""
    con.execute(f"CREATE OR REPLACE VIEW {layer}.{quote_ident(name)} AS SELECT * FROM {scan_sql}")


def without_line_context(message: str) -> str:
    """A DuckDB error message without the `LINE n: <the SQL>` context it appends."""
    return message.split("\n\nLINE")[0]


def connect(
    settings: Settings, *, extensions: tuple[str, ...] = (), memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with limits from settings; S3 access when storage is S3."""
    # DuckDB names its spill files the same in every instance and deletes them on close, so
    # each connection gets its own folder (created by DuckDB on first spill, removed on close).
    spill_root = settings.state_dir / "duckdb_tmp"
    spill_root.mkdir(parents=True, exist_ok=True)
    if spill_root not in _SWEPT:  # crashes are rare: once per process is enough
        _sweep_spill(spill_root)
        _SWEPT.add(spill_root)
    spill = spill_root / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    config = base_config(
        memory_limit or settings.duckdb_memory_limit, spill, settings.duckdb_threads
    )
    con = duckdb.connect(":memory:", config=config)
    # Progress goes through query_progress(), never to the terminal; a Jupyter kernel
    # without ipywidgets refuses the setting (and prints no bar anyway).
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar_print = false")
        # Off by default where DuckDB thinks nobody watches (a Streamlit server):
        # query_progress() then stays at -1 and uploads show no conversion progress.
        con.execute("SET enable_progress_bar = true")
    wanted = set(extensions) | ({"httpfs"} if settings.storage == "s3" else set())
    for name in sorted(wanted):
        load_extension(con, name)
    if settings.storage == "s3":
        con.execute(s3_secret_sql(settings))
    return con


def lock(con: duckdb.DuckDBPyConnection, roots: Sequence[str]) -> None:
    """Lock `con` for SQL from people the lake does not trust: from now on it reads only under
    `roots` (the lake's layer folders or buckets), loads no extension, sees no Python variable
    and refuses every SET, so a statement the guard wrongly lets through still reaches neither
    the host's files nor the network. Load extensions and secrets before calling this."""
    for setting in (
        "autoinstall_known_extensions",
        "autoload_known_extensions",
        "python_enable_replacements",  # no scans of the process's Python variables
    ):
        con.execute(f"SET {setting} = false")
    # Order matters: allowed_directories cannot be set once external access is off.
    con.execute(f"SET allowed_directories = [{', '.join(map(quote_literal, roots))}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def parquet_scan(uris: list[str]) -> str:
    """`read_parquet([...])` over data files; snapshot folders are not Hive partitions."""
    files = ", ".join(quote_literal(u) for u in uris)
    return f"read_parquet([{files}], hive_partitioning = false)"
