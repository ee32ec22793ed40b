"""Findings 5, 7 and 8: nothing of the app before login, a per-address rate limit, and the
user from the login, through the real gate (nginx + streamlit_app.gate) in front of a real
Streamlit server."""

import base64
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lakehouse.passwords import hash_password
from pipelines.serve import free_port
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_server

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
UPLOAD_MB = 100
RSS_SLACK_MB = 30  # a Python server's own noise; the finding was +100 MB per upload


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _pid_listening(port: int) -> int:
    """The Streamlit process serving `port` (started by streamlit_server with it on argv)."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(argv) and str(port).encode() in argv:
            return int(proc.name)
    raise AssertionError(f"no streamlit process on port {port}")


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("gated")
    users = root / "users"
    users.write_text(f"ann:{hash_password('ann pw', iterations=1_000)}\n")
    env = {
        "RATATOUILLE_LAKE_ROOT": str(root / "lake"),
        "RATATOUILLE_STATE_DIR": str(root / "state"),
        "RATATOUILLE_APP_PASSWORD_HASH": hash_password(PASSWORD),  # full cost, as deployed
        "RATATOUILLE_APP_USERS_FILE": str(users),
        "RATATOUILLE_DAGSTER_URL": f"http://127.0.0.1:{free_port()}",  # none: sidebar says so
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    port = free_port()
    try:
        with streamlit_server(root) as upstream:
            up = urllib.parse.urlsplit(upstream)
            log = (root / "gate.log").open("wb")
            gate = subprocess.Popen(
                [sys.executable, "-m", "streamlit_app.gate", "--listen", f"127.0.0.1:{port}",
                 "--upstream", up.netloc],
                cwd=ROOT, env={**os.environ}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 30
                while True:
                    assert gate.poll() is None, (root / "gate.log").read_text()
                    try:  # nginx listens before the gate behind it does: ask the gate
                        if _request(port, "GET", "/login").status == 200:
                            break
                    except OSError:
                        pass
                    assert time.monotonic() < deadline, "the gate did not come up"
                    time.sleep(0.2)
                yield {
                    "port": str(port),
                    "url": f"http://127.0.0.1:{port}",
                    "upstream": upstream,
                    "upstream_port": str(up.port),
                }
            finally:
                os.killpg(gate.pid, signal.SIGTERM)
                gate.wait(20)
                log.close()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _request(
    port: int | str,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
) -> http.client.HTTPResponse:
    con = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60, source_address=(source, 0))
    con.request(method, path, body=body, headers=headers or {})
    resp = con.getresponse()
    resp.read()
    con.close()
    return resp


def _login(gated: dict[str, str], user: str, password: str, source: str = "127.0.0.1"):
    form = urllib.parse.urlencode({"user": user, "password": password, "next": "/"}).encode()
    return _request(
        gated["port"], "POST", "/login", body=form, source=source,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip


def _cookie(resp: http.client.HTTPResponse) -> str:
    set_cookie = resp.getheader("Set-Cookie") or ""
    assert set_cookie.startswith("ratatouille_session="), set_cookie
    return set_cookie.split(";")[0]


def _ws_upgrade(port: int | str, cookie: str | None = None) -> str:
    """The status line nginx answers to a websocket handshake on Streamlit's stream."""
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    lines = [
        "GET /_stcore/stream HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return s.recv(4096).split(b"\r\n", 1)[0].decode()


APP_PATHS = [
    "/",
    "/_stcore/health",
    "/_stcore/host-config",
    "/_stcore/upload_file/session/file",
    "/media/0123456789abcdef.png",
    "/static/js/index.js",
    "/component/some.component/index.html",
    "/app/static/x.png",
]


def test_nothing_of_the_app_answers_before_login(gated, record) -> None:
    # The paths are Streamlit's: its own port serves health (the finding reached it).
    assert _request(gated["upstream_port"], "GET", "/_stcore/health").status == 200
    for path in APP_PATHS:
        resp = _request(gated["port"], "GET", path)
        assert resp.status in (302, 401), (path, resp.status)
        assert (resp.getheader("Location") or "/login").startswith("/login"), path
    ws = _ws_upgrade(gated["port"])
    assert " 302 " in ws or " 401 " in ws, ws
    # A client's own identity headers do not let it in either.
    spoofed = _request(
        gated["port"], "GET", "/_stcore/health",
        headers={"X-Forwarded-User": "admin", "X-Ratatouille-User": "admin",
                 "X-Real-IP": "127.0.0.1"},
    )  # fmt: skip
    assert spoofed.status == 302
    forged = _request(
        gated["port"], "GET", "/_stcore/health",
        headers={"Cookie": "ratatouille_session=YWRtaW4.9999999999.forged"},
    )  # fmt: skip
    assert forged.status == 302
    record(
        "before login: GET of every Streamlit path, websocket upgrade, spoofed identity "
        "headers, a forged session cookie",
        "each answered a redirect to /login by nginx; none reached Streamlit",
        figures=f"{len(APP_PATHS)} paths + websocket + 2 spoofs",
    )


def _stream_upload(port: int | str, mb: int, path: str) -> str:
    """POST `mb` MB to `path` in 1 MB chunks; the status line, or how the server cut it off."""
    chunk = b"\0" * (1 << 20)
    boundary = "ratatouille"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + mb * len(chunk) + len(tail)
    with socket.create_connection(("127.0.0.1", int(port)), timeout=60) as s:
        s.sendall(
            (
                f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
            ).encode()
            + head
        )
        try:
            for _ in range(mb):
                s.sendall(chunk)
            s.sendall(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed without reading the body: good
        try:
            return s.recv(4096).split(b"\r\n", 1)[0].decode() or "closed"
        except (ConnectionResetError, TimeoutError):
            return "closed"


def test_unauthenticated_upload_leaves_the_app_flat(gated, record) -> None:
    pid = _pid_listening(int(gated["upstream_port"]))
    before = _rss_mb(pid)
    statuses = [
        _stream_upload(gated["port"], UPLOAD_MB, f"/_stcore/upload_file/s{i}/f{i}")
        for i in range(4)
    ]
    time.sleep(1)
    after = _rss_mb(pid)
    assert all(" 200" not in s and " 204" not in s for s in statuses), statuses
    assert after - before < RSS_SLACK_MB, f"Streamlit grew from {before:.0f} to {after:.0f} MB"
    record(
        f"4 unauthenticated {UPLOAD_MB} MB uploads streamed to /_stcore/upload_file",
        "nginx refused them before reading the body; Streamlit's memory stayed flat",
        figures=f"Streamlit RSS {before:.0f} → {after:.0f} MB; answers {sorted(set(statuses))}",
    )


def test_after_login_the_app_loads(gated, record) -> None:
    resp = _login(gated, "admin", PASSWORD)
    assert resp.status == 303 and resp.getheader("Location") == "/"
    set_cookie = resp.getheader("Set-Cookie") or ""
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie and "Max-Age=" in set_cookie
    cookie = _cookie(resp)
    health = _request(gated["port"], "GET", "/_stcore/health", headers={"Cookie": cookie})
    assert health.status == 200
    page = _request(gated["port"], "GET", "/", headers={"Cookie": cookie})
    assert page.status == 200
    assert " 101 " in _ws_upgrade(gated["port"], cookie), "the websocket opens after login"
    out = _request(gated["port"], "GET", "/logout", headers={"Cookie": cookie})
    assert "Max-Age=0" in (out.getheader("Set-Cookie") or "") or "expires" in (
        out.getheader("Set-Cookie") or ""
    )
    record(
        "log in through /login, then page, health and websocket with the session cookie",
        "303 with an HttpOnly SameSite=Lax expiring cookie; the app and its websocket answer",
    )


def test_guessing_slows_only_the_guesser(gated, record) -> None:
    """Eight parallel wrong passwords from one address are limited; another address logs in
    at once (the old delay was process-wide: the right password then took 30 s)."""
    with ThreadPoolExecutor(8) as pool:
        wrong = list(
            pool.map(lambda i: _login(gated, "admin", f"guess {i}", source="127.0.0.2"), range(8))
        )
    codes = sorted(r.status for r in wrong)
    assert 200 not in codes and 303 not in codes
    limited = [r for r in wrong if r.status == 429]
    assert len(limited) >= 3, codes
    assert all(int(r.getheader("Retry-After") or 0) >= 1 for r in limited)
    # The guesser is held even with the right password, while it must wait.
    assert _login(gated, "admin", PASSWORD, source="127.0.0.2").status == 429
    # X-Real-IP from a client is replaced by nginx: a guesser cannot pose as someone else.
    form = urllib.parse.urlencode({"user": "admin", "password": "guess"}).encode()
    posing = _request(
        gated["port"], "POST", "/login", body=form, source="127.0.0.2",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Real-IP": "10.9.9.9",
                 "X-Forwarded-For": "10.9.9.9"},
    )  # fmt: skip
    assert posing.status == 429
    started = time.monotonic()
    other = _login(gated, "admin", PASSWORD, source="127.0.0.3")
    took = time.monotonic() - started
    assert other.status == 303, other.status
    assert took < 3, f"the right password from another address took {took:.1f} s"
    record(
        "8 parallel wrong passwords from 127.0.0.2, then the right one from 127.0.0.2 and from "
        "127.0.0.3",
        "the guesser got 429 with Retry-After; the other address logged in at once",
        figures=f"answers {codes}; other address in {took:.2f} s",
    )


def test_browser_logs_in_through_the_gate_as_its_user(gated, record) -> None:
    """Chromium logs in as ann while sending X-Forwarded-User: mallory; the app names ann."""
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(extra_http_headers={"X-Forwarded-User": "mallory"})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(gated["url"] + "/")
            assert "/login" in page.url
            page.fill("input[name=user]", "ann")
            page.fill("input[name=password]", "ann pw")
            page.click("button[type=submit]")
            expect(page.get_by_text("Signed in as ann")).to_be_visible(timeout=30_000)
            expect(page.get_by_role("heading", name="Ratatouille")).to_be_visible(timeout=30_000)
            assert page.get_by_text("mallory").count() == 0
            context.close()
        finally:
            browser.close()
    record(
        "headless Chromium logs in through the gate as ann, sending X-Forwarded-User: mallory",
        "the app loads and names the user from the signed cookie (ann), not the header",
    )
