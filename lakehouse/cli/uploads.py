"""`ratatouille uploads`: serve resumable uploads (tus) and watch the landing zone."""

import logging

import click

from lakehouse.errors import LakehouseError
from lakehouse.settings import Settings


@click.command("uploads")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8502, show_default=True, type=int)
def uploads_cmd(host: str, port: int) -> None:
    """Serve the resumable upload endpoint (tus 1.0) at http://HOST:PORT/files/: each finished
    file is ingested into bronze and its dataset's silver and gold are built at once, as are
    files dropped into landing/ (RATATOUILLE_FRESH_RUNS=false leaves both to the pipeline's
    sensors). Without an app password it listens on 127.0.0.1 only."""
    from lakehouse.cli.main import _fail
    from lakehouse.uploads.fresh import LandingWatcher, upload_launch
    from lakehouse.uploads.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = Settings()
    try:
        fresh = settings.fresh_runs
        serve(
            settings,
            host,
            port,
            launch=upload_launch if fresh else None,
            background=[LandingWatcher(settings).run] if fresh else [],
        )
    except LakehouseError as e:
        _fail(e, False)
        raise SystemExit(2) from e
