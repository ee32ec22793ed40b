"""The tus 1.0 endpoint (core, creation, termination, expiration): any tus client uploads
here — the app's Uppy uploader, tuspy, tus-js-client, `tusd`'s CLI.

Request bodies stream through in bounded buffers into the upload's store; a body cut off
midway keeps what arrived, and the client resumes from the offset a HEAD reports. A new
PATCH or HEAD for an upload whose previous PATCH still hangs (a dead connection the server has
not noticed yet) takes over: the old request stops once the bytes it received are written.
"""

import asyncio
import base64
import binascii
import logging
from email.utils import format_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from lakehouse.errors import LakehouseError
from lakehouse.passwords import login_required, read_upload_token
from lakehouse.uploads.records import UploadNotFound, UploadRecord, UploadTooLarge
from lakehouse.uploads.service import UploadService
from lakehouse.uploads.store import InsufficientStorage

log = logging.getLogger(__name__)
VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration"
_OCTETS = "application/offset+octet-stream"
_FLUSH = 4 * 2**20  # bytes gathered before a write: few syscalls, bounded memory
_TAKEOVER_S = 15.0
_TUS_HEADERS = [
    "Authorization", "Content-Type", "Tus-Resumable", "Upload-Length", "Upload-Metadata",
    "Upload-Offset", "Upload-Defer-Length", "Upload-Concat", "X-HTTP-Method-Override",
    "X-Requested-With",
]  # fmt: skip
_EXPOSED = [
    "Location", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size",
    "Upload-Offset", "Upload-Length", "Upload-Expires", "Upload-Metadata",
]  # fmt: skip


class _Writers:
    """The request currently writing each upload, so a newer one can take over."""

    def __init__(self) -> None:
        self.locks: dict[str, asyncio.Lock] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def lock(self, upload_id: str) -> asyncio.Lock:
        return self.locks.setdefault(upload_id, asyncio.Lock())

    async def acquire(self, upload_id: str) -> asyncio.Lock:
        lock = self.lock(upload_id)
        if lock.locked() and (old := self.tasks.get(upload_id)) is not None:
            old.cancel()
        await asyncio.wait_for(lock.acquire(), _TAKEOVER_S)
        task = asyncio.current_task()
        if task is not None:
            self.tasks[upload_id] = task
        return lock

    def release(self, upload_id: str, lock: asyncio.Lock) -> None:
        if self.tasks.get(upload_id) is asyncio.current_task():
            del self.tasks[upload_id]
        lock.release()


def _tus(response: Response) -> Response:
    response.headers["Tus-Resumable"] = VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(status: int, title: str, message: str) -> Response:
    return _tus(PlainTextResponse(f"{title}: {message}", status))


def parse_metadata(header: str | None) -> dict[str, str]:
    """`key base64value,key2 base64value2` → dict; values that are not UTF-8 are refused."""
    out: dict[str, str] = {}
    for item in (header or "").split(","):
        key, _, value = item.strip().partition(" ")
        if not key:
            continue
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise ValueError(f"metadata {key[:40]!r} is not base64 of UTF-8 text") from e
    return out


def create_app(service: UploadService) -> Starlette:
    settings = service.settings
    writers = _Writers()
    max_size = settings.max_upload_mb * 2**20

    def user_of(request: Request) -> tuple[str | None, Response | None]:
        if not login_required(settings):
            return None, None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = read_upload_token(settings, token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            response = _error(401, "Not logged in", "log in to the app and upload from its page")
            response.headers["WWW-Authenticate"] = "Bearer"
            return None, response
        return user, None

    def expires(record: UploadRecord) -> str:
        return format_datetime(record.expires(settings), usegmt=True)

    async def options(request: Request) -> Response:
        response = _tus(Response(status_code=204))
        response.headers.update(
            {"Tus-Version": VERSION, "Tus-Extension": EXTENSIONS, "Tus-Max-Size": str(max_size)}
        )
        return response

    async def files(request: Request) -> Response:
        method = request.headers.get("x-http-method-override", request.method).upper()
        if method == "OPTIONS":
            return await options(request)
        user, refused = user_of(request)
        if refused is not None:
            return refused
        if request.headers.get("tus-resumable") != VERSION:
            return _error(412, "Unsupported tus version", f"this server speaks tus {VERSION}")
        upload_id = request.path_params.get("upload_id")
        try:
            if upload_id is None:
                if method != "POST":
                    return _error(405, "Method not allowed", method)
                return await create(request, user)
            record = await run_in_threadpool(service.get, upload_id)
            if record.user != user and login_required(settings):
                raise UploadNotFound(f"No upload {upload_id!r}.")  # someone else's: not shown
            if method == "HEAD":
                return await head(record)
            if method == "PATCH":
                return await patch(request, record)
            if method == "DELETE":
                return await delete(record)
            return _error(405, "Method not allowed", method)
        except UploadNotFound as e:
            return _error(404, e.title, e.msg)
        except UploadTooLarge as e:
            return _error(413, e.title, e.msg)
        except InsufficientStorage as e:
            return _error(507, e.title, e.msg)
        except LakehouseError as e:
            return _error(400 if e.title.startswith("Invalid") else 500, e.title, e.msg)

    async def create(request: Request, user: str | None) -> Response:
        if "upload-defer-length" in request.headers:
            return _error(400, "Length required", "give Upload-Length when creating an upload")
        try:
            length = int(request.headers.get("upload-length", ""))
            metadata = parse_metadata(request.headers.get("upload-metadata"))
        except ValueError as e:
            return _error(400, "Invalid upload", str(e) or "Upload-Length must be a number")
        if length < 0:
            return _error(400, "Invalid upload", "Upload-Length must not be negative")
        record = await run_in_threadpool(service.create, length, metadata, user)
        response = _tus(Response(status_code=201))
        response.headers["Location"] = f"{str(request.url).rstrip('/')}/{record.id}"
        response.headers["Upload-Expires"] = expires(record)
        return response

    async def head(record: UploadRecord) -> Response:
        # A client asks where to resume after its connection broke: the request that was
        # writing (if the server has not noticed yet) stops first, so the offset is final.
        try:
            writers.release(record.id, await writers.acquire(record.id))
        except TimeoutError:
            return _error(423, "Upload busy", "another request is still writing this upload")
        response = _tus(Response(status_code=200))
        offset = await run_in_threadpool(service.offset, record)
        response.headers.update({"Upload-Offset": str(offset), "Upload-Length": str(record.length)})
        if record.state == "receiving":
            response.headers["Upload-Expires"] = expires(record)
        return response

    async def patch(request: Request, record: UploadRecord) -> Response:
        if request.headers.get("content-type") != _OCTETS:
            return _error(415, "Wrong content type", f"PATCH bodies are {_OCTETS}")
        try:
            claimed = int(request.headers.get("upload-offset", ""))
        except ValueError:
            return _error(400, "Invalid upload", "Upload-Offset must be a number")
        try:
            lock = await writers.acquire(record.id)
        except TimeoutError:
            return _error(423, "Upload busy", "another request is still writing this upload")
        try:
            record = await run_in_threadpool(service.get, record.id)  # as the last writer left it
            if record.state != "receiving":
                return _error(409, "Upload complete", "every byte of this upload is in")
            offset = await run_in_threadpool(service.offset, record)
            if claimed != offset:
                return _error(409, "Wrong offset", f"the upload is at byte {offset}, not {claimed}")
            offset = await _receive(request, record, offset)
            await run_in_threadpool(service.touched, record)
            if offset == record.length:
                await run_in_threadpool(service.complete, record)
        finally:
            writers.release(record.id, lock)
        response = _tus(Response(status_code=204))
        response.headers["Upload-Offset"] = str(offset)
        if record.state == "receiving":
            response.headers["Upload-Expires"] = expires(record)
        return response

    async def _receive(request: Request, record: UploadRecord, offset: int) -> int:
        """Stream the body into the store; return the new offset (bytes of a cut-off body
        count as far as they arrived)."""
        buffer = bytearray()
        with service.appender(record, offset) as out:
            try:
                async for chunk in request.stream():
                    if offset + len(buffer) + len(chunk) > record.length:
                        raise _TooLong
                    buffer += chunk
                    if len(buffer) >= _FLUSH:
                        await run_in_threadpool(out.write, bytes(buffer))
                        offset += len(buffer)
                        buffer.clear()
            except (ClientDisconnect, asyncio.CancelledError):
                log.info("upload %s: body cut off at byte %d", record.id, offset + len(buffer))
            finally:
                if buffer:
                    await asyncio.shield(run_in_threadpool(out.write, bytes(buffer)))
                    offset += len(buffer)
        return offset

    async def delete(record: UploadRecord) -> Response:
        if record.state == "ingesting":
            return _error(409, "Upload being ingested", "it can be cancelled only before that")
        await run_in_threadpool(service.terminate, record)
        return _tus(Response(status_code=204))

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    methods = ["OPTIONS", "POST", "HEAD", "PATCH", "DELETE"]
    app = Starlette(
        routes=[
            Route("/files", files, methods=methods),
            Route("/files/", files, methods=methods),
            Route("/files/{upload_id}", files, methods=methods),
            Route("/health", health),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],  # auth is a bearer token, never a cookie
                allow_methods=methods,
                allow_headers=_TUS_HEADERS,
                expose_headers=_EXPOSED,
                max_age=86400,
            )
        ],
    )
    app.add_exception_handler(_TooLong, _too_long)
    return app


class _TooLong(Exception):
    pass


async def _too_long(request: Request, exc: Exception) -> Response:
    return _error(413, "Too many bytes", "the body goes past the upload's Upload-Length")
