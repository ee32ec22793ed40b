"""The one place that reads the environment: `RATATOUILLE_*` variables and `.env`."""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

QUERY_LAYERS = ("silver", "gold", "bronze")


class Settings(BaseSettings):
    """Every field is documented in `.env.example` and `docs/configuration.md` (a test checks)."""

    model_config = SettingsConfigDict(
        env_prefix="RATATOUILLE_",
        env_file=".env",
        env_ignore_empty=True,  # `RATATOUILLE_S3_ENDPOINT=` means unset, not ""
        extra="ignore",
        frozen=True,
    )

    storage: Literal["local", "s3"] = Field(
        "local", description="Where the lake lives: `local` (a folder) or `s3` (MinIO, AWS S3)."
    )
    lake_root: Path = Field(
        Path("lake"), description="Folder holding the layers when storage is `local`."
    )
    state_dir: Path = Field(
        Path(".ratatouille"),
        description="Working state: staging files for ingest and publish, DuckDB spill files.",
    )
    s3_endpoint: str | None = Field(
        None,
        description="S3 endpoint as `host:port` without scheme (e.g. `localhost:9000`); "
        "empty for AWS S3.",
    )
    s3_access_key: str | None = Field(None, description="S3 access key id.")
    s3_secret_key: SecretStr | None = Field(None, description="S3 secret access key.")
    s3_region: str = Field("us-east-1", description="S3 region; MinIO accepts any, keep default.")
    s3_use_ssl: bool = Field(True, description="Use HTTPS for S3; `false` for a plain-HTTP MinIO.")
    s3_url_style: Literal["path", "vhost"] = Field(
        "path", description="`path` for MinIO and most S3 servers, `vhost` for AWS if preferred."
    )
    bucket_bronze: str = Field("bronze", description="Bucket for the bronze layer (S3 mode).")
    bucket_silver: str = Field("silver", description="Bucket for the silver layer (S3 mode).")
    bucket_gold: str = Field("gold", description="Bucket for the gold layer (S3 mode).")
    bucket_landing: str = Field("landing", description="Bucket for the landing drop zone.")
    max_ingest_mb: int = Field(
        102_400, gt=0, description="Largest file `ingest` accepts, in MB (after decompression)."
    )
    table_history_hours: int = Field(
        168,
        ge=0,
        description="Hours a silver/gold table version stays restorable (rollback, `as_of`) "
        "after a newer one replaced it; older files are vacuumed and log entries cleaned.",
    )
    snapshots_grace_s: int = Field(
        300,
        ge=0,
        description="Seconds a replaced table version's files (or bronze batches a `replace` "
        "upload took out) stay readable, even with table_history_hours 0, for queries that "
        "resolved them before.",
    )
    duckdb_memory_limit: str = Field(
        "4GB", description="DuckDB memory limit per process; larger work spills to `state_dir`."
    )
    duckdb_threads: int | None = Field(
        None, ge=1, description="DuckDB worker threads; empty means one per core."
    )
    s3_query_access_key: str | None = Field(
        None,
        description="Read-only S3 access key for untrusted (playground) queries; "
        "empty means the lake's own key.",
    )
    s3_query_secret_key: SecretStr | None = Field(
        None, description="Secret for `s3_query_access_key`."
    )
    query_layers: Annotated[tuple[str, ...], NoDecode] = Field(
        QUERY_LAYERS,
        description="Layers untrusted queries may read, comma-separated.",
    )
    query_workers: int = Field(
        2, ge=1, le=64, description="Worker processes running untrusted queries side by side."
    )
    query_time_limit_s: float = Field(
        30.0, gt=0, description="Seconds an untrusted query may run before it is stopped."
    )
    query_export_time_limit_s: float = Field(
        3600.0, gt=0, description="Seconds a full-result export (CSV/Parquet) may run."
    )
    export_csv_safe: bool = Field(
        True,
        description="CSV exports prefix text cells starting with = + - @ tab or CR with ' so "
        "spreadsheets do not run them as formulas.",
    )
    query_memory_limit: str = Field(
        "2GB", description="DuckDB memory limit of each query worker; beyond it queries spill."
    )
    query_temp_limit: str = Field(
        "20GB", description="Spill space each query worker may use under `state_dir`."
    )
    query_threads: int | None = Field(
        None, ge=1, description="DuckDB threads per query worker; empty means one per core."
    )
    query_row_cap: int = Field(
        10_000, ge=1, description="Rows an untrusted query returns (the rest is flagged)."
    )
    query_max_result_mb: int = Field(
        64, ge=1, description="MB of Arrow data an untrusted query returns (the rest is flagged)."
    )
    query_worker_max_mb: int | None = Field(
        None,
        ge=256,  # above an idle worker's own footprint (benchmarks/README.md)
        description="Memory ceiling of each query worker in MB (resident memory; past it the "
        "worker is killed and replaced); empty means 2 × query_memory_limit + 512.",
    )

    models_dir: Path = Field(
        Path("pipelines/models"),
        description="Folder of gold SQL models (`<name>.sql`), one pipeline asset each.",
    )
    notebook_steps_dir: Path = Field(
        Path("notebooks/steps"),
        description="Folder of notebooks (`<name>.ipynb`) run as pipeline steps.",
    )
    promote_time_limit_s: float = Field(
        600,
        gt=0,
        description="Longest a notebook's trial run may take when it is promoted to a "
        "pipeline step (`ratatouille promote`, JupyterLab's button).",
    )
    datasets_file: Path = Field(
        Path("pipelines/datasets.toml"),
        description="Per-dataset options for silver (key columns, description).",
    )
    sensor_interval_s: int = Field(
        5,
        ge=1,
        description="Seconds between the pipeline sensors' checks (new landing files, bronze "
        "batches, stale gold); Dagster's daemon looks at most every 5 s.",
    )
    landing_settle_s: float = Field(
        5.0,
        ge=0,
        description="Seconds a file in a local landing folder must stay unchanged before it is "
        "ingested (S3 objects are complete once visible).",
    )
    dagster_executor: Literal["in_process", "multiprocess"] = Field(
        "in_process",
        description="How pipeline runs execute steps: `in_process` (fast start) or "
        "`multiprocess` (a process per step).",
    )
    run_retention_days: int = Field(
        30, ge=1, description="Days Dagster keeps runs and their event logs."
    )

    app_password: SecretStr | None = Field(
        None,
        description="Password for the app; when set (or its hash), every page asks for it. "
        "Empty means no login (bind the app to 127.0.0.1 then).",
    )
    app_password_hash: str | None = Field(
        None,
        description="The app password as a `ratatouille hash-password` hash, instead of "
        "the password itself.",
    )
    app_user: str = Field(
        "admin", min_length=1, description="User name that logs in with the app password."
    )
    app_users_file: Path | None = Field(
        None,
        description="File of further app users, one `name:hash` a line (hashes from "
        "`ratatouille hash-password`).",
    )
    session_secret: SecretStr | None = Field(
        None,
        description="Key signing login cookies; empty means a random key kept (mode 0600) "
        "in `state_dir/session.key`.",
    )
    session_hours: float = Field(12.0, gt=0, description="Hours a login lasts.")
    cookie_secure: bool = Field(
        False, description="Send the login cookie over HTTPS only (set when served over TLS)."
    )
    trusted_user_header: str | None = Field(
        None,
        description="Header naming the user, set by an SSO proxy in front of the app; trusted "
        "only when set here (and then the app must be reachable only through that proxy).",
    )
    max_upload_mb: int = Field(
        102_400,
        ge=1,
        description="Largest file the app's resumable uploads accept, in MB (100 GB by "
        "default); refused before any byte is stored.",
    )
    uploads_url: str = Field(
        "http://127.0.0.1:8502",
        description="Where browsers reach the resumable upload endpoint (tus); the Upload page "
        "hands it to its uploader.",
    )
    upload_expiry_hours: float = Field(
        24.0,
        gt=0,
        description="Hours an unfinished upload may sit untouched before it is deleted (and "
        "how long a finished upload's outcome stays readable).",
    )
    fresh_runs: bool = Field(
        True,
        description="The upload service starts a dataset's silver and gold run the moment an "
        "upload is in bronze or a landing file is ready, over Dagster's API; false leaves "
        "both to the pipeline's sensors (seconds later).",
    )
    dagster_url: str = Field(
        "http://127.0.0.1:3000",
        description="Where the app and the upload service reach the Dagster webserver (UI "
        "links and its GraphQL API).",
    )
    app_url: str = Field(
        "http://127.0.0.1:8501",
        description="Where people open the app; Dagster's materializations link to it (a "
        "notebook step's rendered run).",
    )
    jupyter_url: str = Field(
        "http://127.0.0.1:8888",
        description="Where people open JupyterLab; the app's edit links for notebook steps.",
    )
    stale_after_h: float = Field(
        24.0,
        gt=0,
        description="Hours after which an asset without a newer materialization shows as "
        "stale on the pipelines page.",
    )

    def as_env(self) -> dict[str, str]:
        """These settings as `RATATOUILLE_*` variables, paths absolute: a child process (a
        notebook kernel, whatever its cwd) then opens the same lake."""
        env = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, Path):
                value = value.resolve()
            elif isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, bool):
                value = str(value).lower()
            elif isinstance(value, list | tuple):
                value = ",".join(map(str, value))
            env[f"RATATOUILLE_{name.upper()}"] = str(value)
        return env

    def replace(self, **changes: object) -> "Settings":
        """A validated copy with changes (`model_copy(update=...)` skips validation)."""
        return type(self).model_validate({**dict(self), **changes})

    @field_validator("query_layers", mode="before")
    @classmethod
    def _split_layers(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip().lower() for v in value.split(",") if v.strip()]
        if isinstance(value, list | tuple):
            unknown = sorted(set(value) - set(QUERY_LAYERS))
            if unknown or not value:
                raise ValueError(
                    f"expected a comma-separated subset of {','.join(QUERY_LAYERS)}, "
                    f"got {unknown or 'nothing'}"
                )
        return value


def invalid_settings(e: ValidationError) -> str:
    """What is wrong with the settings, one `field: problem` per invalid value."""
    return "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())


def endpoint_problem(endpoint: str | None) -> str | None:
    """Why an endpoint setting is wrong, with its fix; None when it is fine."""
    if endpoint is None:
        return None
    if "://" in endpoint:
        scheme, _, rest = endpoint.partition("://")
        return (
            f"RATATOUILLE_S3_ENDPOINT is {endpoint!r} but must be host:port without a scheme. "
            f"Set RATATOUILLE_S3_ENDPOINT={rest.rstrip('/')} and "
            f"RATATOUILLE_S3_USE_SSL={'true' if scheme == 'https' else 'false'}."
        )
    if "/" in endpoint or not endpoint.strip():
        return f"RATATOUILLE_S3_ENDPOINT is {endpoint!r}; expected host:port, e.g. localhost:9000."
    return None
