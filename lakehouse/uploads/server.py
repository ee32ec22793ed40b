"""`ratatouille uploads`: the resumable upload endpoint as a process of its own.

It listens beside the app (not inside Streamlit, whose uploader holds files in memory),
ingests each finished upload, starts the dataset's pipeline run at once, and deletes
uploads left unfinished. Without an app password it refuses to listen beyond 127.0.0.1.
"""

import ipaddress
import logging
import threading
from collections.abc import Callable

from lakehouse.errors import ConfigError
from lakehouse.passwords import login_required
from lakehouse.settings import Settings
from lakehouse.uploads.service import Launch, UploadService

log = logging.getLogger(__name__)


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(settings: Settings, host: str) -> None:
    if not loopback(host) and not login_required(settings):
        raise ConfigError(
            f"The upload endpoint would listen on {host} with no app password, so anyone who "
            "can reach it could write into the lake. Set RATATOUILLE_APP_PASSWORD (uploads then "
            "need a logged-in app session), or listen on 127.0.0.1.",
            title="Uploads need a password beyond this machine",
        )


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    launch: Launch | None = None,
    background: list[Callable[[threading.Event], None]] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; `background` tasks (the landing watcher) run in threads
    with a stop event set on the way out."""
    import uvicorn

    from lakehouse.uploads.tus import create_app

    check_host(settings, host)
    service = UploadService(settings, launch=launch)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=task, args=(stop,), daemon=True, name=getattr(task, "__name__", "task")
        )
        for task in [service.run_sweeper, *(background or [])]
    ]
    for thread in threads:
        thread.start()
    resumed = service.resume()
    if resumed:
        log.info("ingesting %d upload(s) finished before the restart", resumed)
    try:
        uvicorn.run(
            create_app(service),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        stop.set()
        service.close()
