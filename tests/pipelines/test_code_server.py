"""The code server's warm run workers rest on two names inside Dagster (pinned): if an upgrade
moves them, these fail before runs silently go back to a cold start."""

import inspect
import multiprocessing
import subprocess
import sys

from dagster._grpc import server

from pipelines import code_server


def test_the_grpc_server_still_takes_its_context_and_entry_point_where_we_swap_them() -> None:
    source = inspect.getsource(server.DagsterApiServer.__init__)
    assert 'multiprocessing.get_context("spawn")' in source
    assert vars(server)["multiprocessing"] is multiprocessing
    assert "get_python_environment_entry_point(" in inspect.getsource(server.open_server_process)
    assert vars(server)["get_python_environment_entry_point"](sys.executable)[-1] == "dagster"


def test_every_preloaded_module_imports_and_definitions_is_not_one_of_them() -> None:
    assert "pipelines.definitions" not in code_server.PRELOAD
    # In a fresh interpreter: the fork server ignores a module that fails to import.
    code = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, *code_server.PRELOAD],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
