"""Health checks for `ratatouille doctor`: each failure comes with its fix."""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
from pydantic import ValidationError

from lakehouse import duck
from lakehouse.cli.secret_strength import weak_reason
from lakehouse.errors import LakehouseError
from lakehouse.layers import Layer, quote_ident
from lakehouse.settings import Settings, endpoint_problem, invalid_settings
from lakehouse.storage import Storage, open_storage
from lakehouse.tables import catalog

PROBE = ".ratatouille-doctor"


@dataclass(frozen=True)
class SetupCheck:
    """One line of `ratatouille doctor`: is this part of the setup usable; if not, the fix."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _run(name: str, fn: Callable[[], str], fix: str) -> SetupCheck:
    try:
        return SetupCheck(name, True, fn())
    except LakehouseError as e:
        return SetupCheck(name, False, f"{e.title}: {e.msg}", fix)
    except (duckdb.Error, OSError) as e:
        return SetupCheck(name, False, str(e).splitlines()[0], fix)


def run_checks(load: Callable[[], Settings] | None = None) -> list[SetupCheck]:
    try:
        settings = load() if load else Settings()
    except ValidationError as e:
        bad = invalid_settings(e)
        return [
            SetupCheck(
                "settings", False, bad, "Fix the RATATOUILLE_* variables (see .env.example)."
            )
        ]
    checks = [SetupCheck("settings", True, f"storage={settings.storage}"), _secrets(settings)]
    if settings.storage == "s3":
        problem = endpoint_problem(settings.s3_endpoint)
        checks.append(
            SetupCheck(
                "s3 endpoint", problem is None, settings.s3_endpoint or "AWS default", problem or ""
            )
        )
        if problem:
            return checks
        if not (settings.s3_access_key and settings.s3_secret_key):
            checks.append(
                SetupCheck(
                    "s3 credentials",
                    False,
                    "no access key or secret key set",
                    "Set RATATOUILLE_S3_ACCESS_KEY and RATATOUILLE_S3_SECRET_KEY.",
                )
            )
            return checks
    try:
        storage = open_storage(settings)
    except LakehouseError as e:
        return [*checks, SetupCheck("storage", False, e.msg, "See the message above.")]
    for layer in Layer:
        checks.append(
            _run(
                f"{layer.value} writable",
                functools.partial(_probe, storage, layer),
                _fix(settings, layer),
            )
        )
    checks.append(
        _run(
            "duckdb httpfs",
            lambda: _httpfs(settings, storage),
            "Install duckdb-extension-httpfs pinned to the duckdb version "
            "(pip install -r requirements.txt). On S3, if boto3 works but DuckDB does not, "
            "check RATATOUILLE_S3_USE_SSL, RATATOUILLE_S3_URL_STYLE and RATATOUILLE_S3_REGION.",
        )
    )
    checks.append(
        _run(
            "query sandbox",
            lambda: _sandbox(settings),
            "Check RATATOUILLE_QUERY_* and, on S3, that RATATOUILLE_S3_QUERY_ACCESS_KEY may "
            "read (only read) the layer buckets.",
        )
    )
    return checks


def _secrets(settings: Settings) -> SetupCheck:
    """The secrets that are set, rated by the rule preflight uses (MinIO's and PostgreSQL's
    are not Settings: deploy/preflight.sh rates those)."""
    named = {
        "RATATOUILLE_APP_PASSWORD": (settings.app_password, settings.app_user),
        "RATATOUILLE_S3_SECRET_KEY": (settings.s3_secret_key, settings.s3_access_key),
        "RATATOUILLE_S3_QUERY_SECRET_KEY": (
            settings.s3_query_secret_key,
            settings.s3_query_access_key,
        ),
        "RATATOUILLE_SESSION_SECRET": (settings.session_secret, None),
    }
    weak, rated = [], 0
    for name, (secret, user) in named.items():
        if secret is None or not secret.get_secret_value():
            continue
        rated += 1
        reason = weak_reason(secret.get_secret_value(), [user] if user else [])
        if reason:
            weak.append(f"{name} {reason}")
    if weak:
        return SetupCheck(
            "secrets", False, "; ".join(weak), "Use long random values: `openssl rand -hex 24`."
        )
    return SetupCheck("secrets", True, f"{rated} set, none weak" if rated else "none set")


def _sandbox(settings: Settings) -> str:
    """Start a query worker and read every table through it, as the playground will."""
    from lakehouse.query.engine import QueryEngine

    tables = [
        t for t in catalog.list_tables(open_storage(settings)) if t.layer in settings.query_layers
    ]
    with QueryEngine(settings.replace(query_workers=1)) as engine:
        for t in tables:
            engine.query(f"SELECT * FROM {t.layer}.{quote_ident(t.name)} LIMIT 1")
    detail = f"a worker read {len(tables)} table(s) of {', '.join(settings.query_layers)}"
    if settings.storage == "s3" and not settings.s3_query_access_key:
        detail += (
            "; it uses the lake's own key — set RATATOUILLE_S3_QUERY_ACCESS_KEY/SECRET_KEY "
            "to a read-only key"
        )
    return detail


def _probe(storage: Storage, layer: Layer) -> str:
    key = f"{layer.value}/{PROBE}"
    storage.put_bytes(key, b"ok")
    if storage.get_bytes(key) != b"ok":
        raise LakehouseError("read back different bytes", title="Storage inconsistent")
    storage.delete([key])
    return storage.uri(key).rsplit("/", 1)[0]


def _fix(settings: Settings, layer: Layer) -> str:
    if settings.storage == "local":
        return f"Make {settings.lake_root / layer.value} writable, or set RATATOUILLE_LAKE_ROOT."
    return (
        f"Check the endpoint is up (RATATOUILLE_S3_ENDPOINT={settings.s3_endpoint}), the bucket "
        f"for {layer.value} exists (RATATOUILLE_BUCKET_{layer.name}), and the keys may write it."
    )


def _httpfs(settings: Settings, storage: Storage) -> str:
    """Load httpfs offline and, on S3, read a probe object through it as queries will."""
    where = f"loaded offline from {duck.extension_path('httpfs').parent}"
    con = duck.connect(settings.replace(storage="local"))
    try:
        duck.load_extension(con, "httpfs")
        if settings.storage != "s3":
            return where
        con.execute(duck.s3_secret_sql(settings))
        key = f"{Layer.BRONZE.value}/{PROBE}.csv"
        storage.put_bytes(key, b"ok\n1\n")
        try:
            con.execute("SELECT * FROM read_csv(?)", [storage.uri(key)]).fetchall()
        finally:
            storage.delete([key])
        return f"{where}; DuckDB reads {storage.uri(key).rsplit('/', 1)[0]}"
    finally:
        con.close()
