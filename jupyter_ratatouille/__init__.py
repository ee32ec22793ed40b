"""JupyterLab's "Promote to pipeline": a server extension (POST /ratatouille/promote) and the
prebuilt lab extension in `labextension/` (source in `js/`) that adds the button and the
palette command. Both load where JupyterLab runs: `make run` and the compose `jupyter` service
pass `--ServerApp.jpserver_extensions` and `--LabApp.extra_labextensions_path` (LABEXTENSIONS).
"""

from pathlib import Path
from typing import Any

from jupyter_ratatouille.handlers import setup_handlers

# JupyterLab finds a prebuilt extension at <this folder>/<its package name>/package.json.
LABEXTENSIONS = Path(__file__).resolve().parent / "labextension"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "jupyter_ratatouille"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    setup_handlers(server_app.web_app)
    server_app.log.info("Ratatouille: POST /ratatouille/promote is served")


__all__ = ["LABEXTENSIONS"]
