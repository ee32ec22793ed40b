"""The one place that reads the environment: `RATATOUILLE_*` variables and `.env`."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    snapshots_keep: int = Field(
        5, ge=1, description="Snapshots kept per silver/gold table for rollback and AS OF reads."
    )
    snapshots_grace_s: int = Field(
        300,
        ge=0,
        description="Seconds a replaced snapshot stays readable (even past snapshots_keep) "
        "for queries that resolved it before it was replaced.",
    )
    duckdb_memory_limit: str = Field(
        "4GB", description="DuckDB memory limit per process; larger work spills to `state_dir`."
    )
    duckdb_threads: int | None = Field(
        None, ge=1, description="DuckDB worker threads; empty means one per core."
    )


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
