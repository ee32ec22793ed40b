"""The login gate: nginx in front of the app asks this service about every request.

`python -m streamlit_app.gate --listen HOST:PORT --upstream HOST:PORT` writes an nginx
configuration, starts Debian's nginx on the public address and this small ASGI service on a
loopback port, and stops both together. nginx's `auth_request` sends every request (page,
websocket, upload, media, static, health) to `/_auth` first, before reading its body: without
a valid signed session cookie it answers a redirect to `/login`, so nothing reaches Streamlit.

Imports no streamlit, so it starts in well under a second.
"""

import argparse
import asyncio
import html
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from lakehouse import Settings
from lakehouse.passwords import (
    COOKIE,
    Throttle,
    check_login,
    login_required,
    make_session,
    read_session,
)

USER_HEADER = "X-Ratatouille-User"
FORM_MAX_BYTES = 16 * 1024
APP_BODY_MB = 8  # no file goes through the app: uploads have their own service
INSTALL_HINT = "nginx is needed in front of the app when it has a password: apt-get install nginx"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ratatouille · log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; display: grid; place-items: center;
  min-height: 90vh; margin: 0; color: #31333f; }}
form {{ display: grid; gap: .6rem; width: 18rem; }}
input, button {{ font: inherit; padding: .45rem .6rem; }}
button {{ cursor: pointer; }}
.msg {{ color: #b00020; min-height: 1.2em; margin: 0; }}
</style></head>
<body><form method="post" action="/login">
<h1>🐀 Ratatouille</h1>
<label>User <input name="user" value="{user}" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
  required autofocus></label>
<input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button>
<p class="msg" role="alert">{message}</p>
</form></body></html>
"""


def safe_next(target: str | None) -> str:
    """A same-site path to return to after login; anything else (another host) is `/`."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if target.startswith(("/login", "/logout", "/_auth")):
        return "/"
    return target


def client_address(request: Request) -> str:
    """The client as nginx saw it (X-Real-IP), trusted only from a loopback peer: the gate
    listens on loopback behind nginx, and a client cannot name itself."""
    peer = request.client.host if request.client else ""
    try:
        from_proxy = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        from_proxy = False
    real = request.headers.get("x-real-ip")
    return real.strip() if from_proxy and real else peer


class Gate:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.throttle = Throttle()

    def page(self, *, user: str = "", next_: str = "/", message: str = "") -> str:
        return _PAGE.format(
            user=html.escape(user or self.settings.app_user),
            next=html.escape(next_),
            message=html.escape(message),
        )

    async def auth(self, request: Request) -> Response:
        """nginx's subrequest: 204 naming the user for a valid session, else 401."""
        if not login_required(self.settings):
            return Response(status_code=204, headers={USER_HEADER: "local"})
        user = read_session(self.settings, request.cookies.get(COOKIE))
        if user is None:
            return Response(status_code=401)
        return Response(status_code=204, headers={USER_HEADER: user})

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            raw = request.url.query
            # nginx passes the original URI unencoded after `next=`: take all of it.
            target = raw.split("next=", 1)[1] if "next=" in raw else "/"
            return HTMLResponse(self.page(next_=safe_next(target)))
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > FORM_MAX_BYTES:
                return Response("Form too large.", status_code=413)
        form = urllib.parse.parse_qs(body.decode(errors="replace"), max_num_fields=10)
        user = form.get("user", [""])[0].strip()
        password = form.get("password", [""])[0]
        target = safe_next(form.get("next", ["/"])[0])
        address = client_address(request)
        wait = self.throttle.attempt(address)
        if wait > 0:
            seconds = int(wait) + 1
            return HTMLResponse(
                self.page(
                    user=user,
                    next_=target,
                    message=f"Too many failed logins from your address: try again in {seconds} s.",
                ),
                status_code=429,
                headers={"Retry-After": str(seconds)},
            )
        ok = await run_in_threadpool(check_login, self.settings, user, password)
        if not ok:
            self.throttle.failed(address)
            return HTMLResponse(
                self.page(user=user, next_=target, message="Wrong user or password."),
                status_code=401,
            )
        self.throttle.succeeded(address)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            make_session(self.settings, user),
            max_age=int(self.settings.session_hours * 3600),
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.settings.cookie_secure,
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(
            COOKIE, path="/", httponly=True, samesite="lax", secure=self.settings.cookie_secure
        )
        return response


def create_app(settings: Settings) -> Starlette:
    gate = Gate(settings)
    return Starlette(
        routes=[
            Route("/_auth", gate.auth),
            Route("/login", gate.login, methods=["GET", "POST"]),
            Route("/logout", gate.logout, methods=["GET", "POST"]),
        ]
    )


# -- nginx ------------------------------------------------------------------------------------
_NGINX = """# Written by streamlit_app/gate.py at each start; edits are overwritten.
worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  server_tokens off;
  absolute_redirect off;  # "/login", not this listen address (wrong behind port mappings)
  client_body_temp_path {run}/body;
  proxy_temp_path {run}/proxy;
  fastcgi_temp_path {run}/fastcgi;
  uwsgi_temp_path {run}/uwsgi;
  scgi_temp_path {run}/scgi;
  # Files go to the upload service (tus, its own port), never through the app: the app's
  # requests are small.
  client_max_body_size {body_mb}m;
  # Login attempts per client address, on top of the gate's own growing delay.
  limit_req_zone $binary_remote_addr zone=login:10m rate=30r/m;
  limit_req_status 429;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}

  server {{
    listen {listen};

    location = /_auth {{
      internal;
      proxy_pass http://{gate}/_auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Real-IP $remote_addr;
    }}
    location = /login {{
      limit_req zone=login burst=20 nodelay;
      client_max_body_size 16k;
      proxy_pass http://{gate};
      proxy_set_header X-Real-IP $remote_addr;
    }}
    location = /logout {{
      proxy_pass http://{gate};
      proxy_set_header X-Real-IP $remote_addr;
    }}
    location @login {{
      return 302 /login?next=$request_uri;
    }}
    # Everything else is the app (pages, /_stcore/stream websocket, /_stcore/upload_file,
    # /media, /static, /component, health), and only after the gate said yes.
    location / {{
      auth_request /_auth;
      auth_request_set $ratatouille_user $upstream_http_x_ratatouille_user;
      error_page 401 = @login;
      proxy_pass http://{upstream};
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Ratatouille-User $ratatouille_user;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 1d;
    }}
  }}
}}
"""


def nginx_config(
    listen: str, upstream: str, gate: str, run_dir: Path, body_mb: int = APP_BODY_MB
) -> str:
    return _NGINX.format(
        listen=listen, upstream=upstream, gate=gate, run=run_dir, body_mb=body_mb + 1
    )


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        raise SystemExit(INSTALL_HINT)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="The login gate in front of the app (nginx + login).")
    p.add_argument("--listen", required=True, help="public HOST:PORT nginx listens on")
    p.add_argument("--upstream", required=True, help="HOST:PORT of the Streamlit server")
    p.add_argument("--gate-port", type=int, default=0, help="loopback port of the login service")
    args = p.parse_args(argv)
    settings = Settings()
    nginx = nginx_binary()
    gate_port = args.gate_port or _free_port()
    run_dir = Path(tempfile.mkdtemp(prefix="ratatouille-gate-"))
    if os.geteuid() == 0:
        # nginx's workers drop to an unprivileged user; they need to reach their temp folders
        # (which nginx itself hands to that user).
        run_dir.chmod(0o711)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / sub).mkdir()
    conf = run_dir / "nginx.conf"
    conf.write_text(nginx_config(args.listen, args.upstream, f"127.0.0.1:{gate_port}", run_dir))
    check = subprocess.run(
        [nginx, "-t", "-q", "-p", str(run_dir), "-e", "stderr", "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    if check.returncode:
        raise SystemExit(f"nginx refused its configuration:\n{check.stderr}")
    proxy = subprocess.Popen([nginx, "-p", str(run_dir), "-e", "stderr", "-c", str(conf)])
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=gate_port,
            log_level="warning",
            access_log=False,
            proxy_headers=False,  # the client address is read from X-Real-IP, from loopback only
        )
    )

    async def watch() -> None:
        while proxy.poll() is None and not server.should_exit:
            await asyncio.sleep(0.5)
        server.should_exit = True

    async def serve() -> None:
        watcher = asyncio.create_task(watch())
        await server.serve()
        watcher.cancel()

    # uvicorn stops on SIGTERM and then re-raises it: a no-op here lets nginx be stopped below.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    print(f"Login gate on http://{args.listen} in front of {args.upstream}", flush=True)
    try:
        asyncio.run(serve())
    finally:
        if proxy.poll() is None:
            proxy.send_signal(signal.SIGQUIT)  # graceful: finish open requests
            try:
                proxy.wait(10)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait()
        shutil.rmtree(run_dir, ignore_errors=True)
    if proxy.returncode not in (0, -signal.SIGQUIT, -signal.SIGTERM):
        sys.exit(f"nginx exited with {proxy.returncode}")


if __name__ == "__main__":
    main()
