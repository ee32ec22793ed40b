"""POST /ratatouille/promote: the lab extension's one call into the lake.

The body is `{"path": <notebook path relative to the server's root_dir>, "name": <step name or
null>, "dry_run": <bool>}`. The answer is `{"ok": true, **Promotion.to_json(), "dagster_url":
...}`, or `{"ok": false, "title": ..., "error": ...}` when the lake refuses (HTTP 200: a refusal
is an answer, not a failure); a path outside the root is a 400, anything else a bug (500).
"""

import asyncio
import json
from pathlib import Path, PurePosixPath
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

ROUTE = "/ratatouille/promote"


def resolve_notebook(root_dir: str | Path, path: object) -> Path:
    """`path` (as the lab's contents API names it, relative to `root_dir`) as an absolute path
    under `root_dir`, or a 400: nothing outside the folder Jupyter serves can be promoted."""
    if not isinstance(path, str) or not path.strip():
        raise tornado.web.HTTPError(400, "path: the notebook's path is required")
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts:
        raise tornado.web.HTTPError(400, f"path: {path!r} is not inside the notebooks folder")
    root = Path(root_dir).resolve()
    notebook = (root / relative).resolve()
    if not notebook.is_relative_to(root):  # a symlink out of the folder
        raise tornado.web.HTTPError(400, f"path: {path!r} is not inside the notebooks folder")
    return notebook


def _promote(notebook: Path, name: str | None, dry_run: bool) -> dict[str, Any]:
    # Imported here, not at the top: the lab starts without waiting for the library to load.
    import lakehouse

    settings = lakehouse.Settings()
    try:
        promotion = lakehouse.connect(settings).promote(notebook, name=name, dry_run=dry_run)
    except lakehouse.LakehouseError as e:
        return {"ok": False, "title": e.title, "error": e.msg}
    return {"ok": True, **promotion.to_json(), "dagster_url": settings.dagster_url}


class PromoteHandler(APIHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as e:
            raise tornado.web.HTTPError(400, f"the body is not JSON: {e}") from e
        if not isinstance(body, dict):
            raise tornado.web.HTTPError(400, "the body must be a JSON object")
        notebook = resolve_notebook(self.contents_manager.root_dir, body.get("path"))
        name = body.get("name") or None
        if name is not None and not isinstance(name, str):
            raise tornado.web.HTTPError(400, "name: a string or null")
        dry_run = body.get("dry_run", True)
        if not isinstance(dry_run, bool):
            raise tornado.web.HTTPError(400, "dry_run: true or false")
        # A trial run takes seconds to minutes: off the event loop, so the lab stays live.
        answer = await asyncio.to_thread(_promote, notebook, name, dry_run)
        self.finish(json.dumps(answer, default=str))


def setup_handlers(web_app: Any) -> None:
    base = web_app.settings["base_url"]
    web_app.add_handlers(".*$", [(url_path_join(base, ROUTE), PromoteHandler)])
