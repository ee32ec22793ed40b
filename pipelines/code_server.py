"""The code server with warm run workers: `python -m pipelines.code_server code-server start ...`
takes `dagster`'s own arguments and runs Dagster's code server, with one change.

Dagster's gRPC server starts each run's worker with multiprocessing's *spawn*: a new Python
that imports Dagster, DuckDB, Arrow, delta-rs and the pipeline code before the run's first
step, ~3 s on two cores, most of the time from an upload to its silver table. Here it uses
*forkserver* instead, with those libraries imported once in the fork server: a run's worker
is a fork of a process that already has them, and only loads the code location itself
(`pipelines.definitions`: models and notebooks as they are now, so a reload still shows new
ones). Everything else — run events, termination, a killed worker failing its run — is
Dagster's own, unchanged.

Two private names of Dagster 1.13 are swapped (pinned; `tests/pipelines/test_code_server.py`
fails if they move): the context `dagster._grpc.server` takes from `multiprocessing`, and the
command the code-server proxy starts its gRPC server with (so that server is this module too).
"""

import multiprocessing
import sys
from collections.abc import Sequence
from typing import Any

# Imported once in the fork server; never `pipelines.definitions` (it reads the models and
# notebooks when imported, and each run must see them as they are at its start).
PRELOAD = [
    # Dagster, as a run worker uses it: execution, its instance's storages, components.
    "dagster",
    "dagster.components",
    "dagster._grpc.impl",
    "dagster._core.execution.api",
    "dagster._core.execution.plan.execute_plan",
    "dagster._core.instance",
    "dagster._core.storage.event_log",
    "dagster._core.storage.runs",
    "dagster._core.storage.schedules",
    "dagster._core.storage.sqlite_storage",
    "dagster_postgres",
    "dagstermill",
    # The engine and the library.
    "duckdb",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "deltalake",
    "lakehouse",
    "lakehouse.lake",
    # The pipeline code, all but its `definitions`.
    "pipelines.assets.bronze",
    "pipelines.assets.silver",
    "pipelines.assets.gold",
    "pipelines.assets.notebooks",
    "pipelines.automation",
    "pipelines.freshness",
    "pipelines.instance",
    "pipelines.metadata",
    "pipelines.notebook_runs",
    "pipelines.resources",
    "pipelines.schedules",
    "pipelines.sensors",
]
MODULE = "pipelines.code_server"


class _ForkserverContexts:
    """What `dagster._grpc.server` sees as `multiprocessing`: every context is forkserver."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def get_context(self, method: str | None = None) -> Any:
        return self._ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def warm_run_workers() -> None:
    """In the gRPC server: start the fork server now (its imports then cost nothing at the
    first run) and hand it every run."""
    from multiprocessing import forkserver

    from dagster._grpc import server

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()
    server.multiprocessing = _ForkserverContexts(ctx)  # type: ignore[attr-defined,assignment]


def serve_through_this_module() -> None:
    """In the proxy (`code-server start`): start the gRPC server as this module too."""
    from dagster._grpc import server

    def entry_point(executable: str) -> Sequence[str]:
        return [executable, "-m", MODULE]

    server.get_python_environment_entry_point = entry_point  # type: ignore[attr-defined,assignment]


def main(argv: list[str]) -> None:
    from dagster._cli import main as dagster_main

    if argv[:2] == ["api", "grpc"]:
        warm_run_workers()
    else:
        serve_through_this_module()
    sys.argv = ["dagster", *argv]
    dagster_main()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main(sys.argv[1:])
