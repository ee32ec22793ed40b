"""The tus endpoint served for real (uvicorn on a loopback port) in a thread of the test."""

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from lakehouse import Settings
from lakehouse.uploads.records import UploadRecord
from lakehouse.uploads.service import Launch, UploadService
from lakehouse.uploads.tus import create_app
from pipelines.serve import free_port


@contextlib.contextmanager
def tus_server(
    settings: Settings, *, launch: Launch | None = None
) -> Iterator[tuple[str, UploadService]]:
    """(the creation URL, the service behind it); stopped on exit."""
    service = UploadService(settings, launch=launch)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the tus server did not start")
        time.sleep(0.02)
    try:
        yield f"{base}/files/", service
    finally:
        server.should_exit = True
        thread.join(10)
        service.close()


def wait_done(service: UploadService, upload_id: str, timeout_s: float = 60) -> UploadRecord:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = service.get(upload_id)
        if record.done:
            return record
        time.sleep(0.05)
    raise AssertionError(f"upload {upload_id} was not ingested within {timeout_s} s")


def upload_id_of(url: str | None) -> str:
    """The id at the end of an upload's URL (tuspy's `uploader.url`, None before creation)."""
    assert url, "the upload was not created"
    return url.rstrip("/").rsplit("/", 1)[-1]


def client() -> httpx.Client:
    return httpx.Client(headers={"Tus-Resumable": "1.0.0"}, timeout=30)
