"""App logins: PBKDF2 hashes for `.env`, accounts, signed session cookies, and the
per-address delay after failed logins."""

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict

from lakehouse.errors import ConfigError
from lakehouse.settings import Settings

SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    """`pbkdf2_sha256$<iterations>$<salt>$<hash>`, for RATATOUILLE_APP_PASSWORD_HASH."""
    if not password:
        raise ConfigError("An empty password protects nothing.", title="Empty password")
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return "$".join([SCHEME, str(iterations), _b64(salt), _b64(digest)])


def check_hash(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.strip().split("$")
        if scheme != SCHEME:
            raise ValueError(scheme)
        expected = base64.urlsafe_b64decode(digest + "==")
        got = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.urlsafe_b64decode(salt + "=="), int(iterations)
        )
    except ValueError as e:
        raise ConfigError(
            "RATATOUILLE_APP_PASSWORD_HASH is not a hash from `ratatouille hash-password`.",
            title="Invalid password hash",
        ) from e
    return hmac.compare_digest(got, expected)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# Checked against when the user is unknown, so that costs a full hash too.
_DECOY = "$".join([SCHEME, str(ITERATIONS), _b64(b"ratatouille-salt"), _b64(bytes(32))])


# -- accounts ---------------------------------------------------------------------------------
def accounts(settings: Settings) -> dict[str, str]:
    """User name → PBKDF2 hash or plain password (marked `plain$`), from the settings and the
    users file. Read on every call, so an edited users file needs no restart."""
    found: dict[str, str] = {}
    if settings.app_password_hash:
        found[settings.app_user] = settings.app_password_hash
    elif settings.app_password:
        found[settings.app_user] = "plain$" + settings.app_password.get_secret_value()
    if settings.app_users_file is not None:
        try:
            lines = settings.app_users_file.read_text().splitlines()
        except OSError as e:
            raise ConfigError(
                f"RATATOUILLE_APP_USERS_FILE: cannot read {settings.app_users_file} ({e}).",
                title="Cannot read the users file",
            ) from e
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, stored = line.partition(":")
            if not sep or not name.strip() or not stored.startswith(SCHEME + "$"):
                raise ConfigError(
                    f"{settings.app_users_file} line {n}: expected `name:hash` with a hash "
                    "from `ratatouille hash-password`.",
                    title="Invalid users file",
                )
            found[name.strip()] = stored.strip()
    return found


def login_required(settings: Settings) -> bool:
    return bool(settings.app_password or settings.app_password_hash or settings.app_users_file)


def check_login(settings: Settings, user: str, password: str) -> bool:
    """True if `password` is `user`'s. An unknown user costs the same hash as a known one,
    so timing does not tell which names exist."""
    stored = accounts(settings).get(user.strip())
    if stored is None:
        check_hash(password, _DECOY)
        return False
    if stored.startswith("plain$"):
        return hmac.compare_digest(password.encode(), stored.removeprefix("plain$").encode())
    return check_hash(password, stored)


def check_password(settings: Settings, password: str) -> bool:
    """True if `password` is the app user's; compared in constant time."""
    if not login_required(settings):
        return True
    return check_login(settings, settings.app_user, password)


# -- login sessions ---------------------------------------------------------------------------
COOKIE = "ratatouille_session"
KEY_FILE = "session.key"


def session_key(settings: Settings) -> bytes:
    """The key signing login cookies: the setting, else a random one created once (0600)
    under state_dir, so the login gate and the app (separate processes) share it."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    path = settings.state_dir / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it meanwhile
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(
            f"Cannot create {path} ({e}); set RATATOUILLE_SESSION_SECRET instead.",
            title="No key for login sessions",
        ) from e
    key = secrets.token_urlsafe(32).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def make_session(settings: Settings, user: str, *, now: float | None = None) -> str:
    """A cookie value naming `user`, valid for `session_hours`: `<user>.<expiry>.<hmac>`."""
    expires = int((time.time() if now is None else now) + settings.session_hours * 3600)
    payload = f"{_b64(user.encode())}.{expires}"
    return f"{payload}.{_sign(session_key(settings), payload)}"


def read_session(settings: Settings, value: str | None, *, now: float | None = None) -> str | None:
    """The user a cookie value names, or None if it is missing, forged, expired, or names a
    user who no longer has an account."""
    if not isinstance(value, str) or not value:
        return None
    payload, _, mac = value.rpartition(".")
    if not hmac.compare_digest(mac.encode(), _sign(session_key(settings), payload).encode()):
        return None
    name_b64, _, expires = payload.partition(".")
    try:
        user = base64.urlsafe_b64decode(name_b64 + "==").decode()
        alive = int(expires) > (time.time() if now is None else now)
    except ValueError:
        return None
    return user if alive and user in accounts(settings) else None


UPLOAD_TOKEN_S = 3600
_UPLOAD = "upload"


def upload_token(settings: Settings, user: str, *, now: float | None = None) -> str | None:
    """A bearer token letting `user`'s browser upload for an hour; None when the app has no
    password (the upload endpoint then listens on 127.0.0.1 only and asks for none).

    Signed with the session key under its own prefix: a token is never a valid cookie, nor
    a cookie a valid token."""
    if not login_required(settings):
        return None
    expires = int((time.time() if now is None else now) + UPLOAD_TOKEN_S)
    payload = f"{_UPLOAD}.{_b64(user.encode())}.{expires}"
    return f"{payload}.{_sign(session_key(settings), payload)}"


def read_upload_token(
    settings: Settings, value: str | None, *, now: float | None = None
) -> str | None:
    """The user an upload token names, or None if it is missing, forged or expired, or names
    a user who no longer has an account."""
    if not isinstance(value, str) or not value:
        return None
    payload, _, mac = value.rpartition(".")
    if not hmac.compare_digest(mac.encode(), _sign(session_key(settings), payload).encode()):
        return None
    kind, _, rest = payload.partition(".")
    name_b64, _, expires = rest.partition(".")
    try:
        user = base64.urlsafe_b64decode(name_b64 + "==").decode()
        alive = int(expires) > (time.time() if now is None else now)
    except ValueError:
        return None
    known = user in accounts(settings) or bool(settings.trusted_user_header)  # SSO users
    return user if kind == _UPLOAD and alive and known else None


def _sign(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


# -- failed logins ----------------------------------------------------------------------------
FREE_TRIES = 3  # failures per address before the delay starts
MAX_DELAY_S = 300.0
_FORGET_S = 3600.0  # an address quiet this long starts afresh
_MAX_ADDRESSES = 10_000  # bounded memory: the oldest entries go first


class Throttle:
    """Failed logins per client address: after FREE_TRIES, each attempt must wait 1, 2, 4 …
    seconds (at most MAX_DELAY_S) after the previous failure. Only that address waits; others
    log in at once. An attempt counts when it starts, so parallel guesses are limited too:
    `attempt()` before checking the password, then `failed()` or `succeeded()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()  # count, not before

    def attempt(self, address: str, *, now: float | None = None) -> float:
        """0 if `address` may try now (the try is counted), else the seconds to wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            count, not_before = self._seen.pop(address, (0, 0.0))
            if count and now - not_before > _FORGET_S:
                count, not_before = 0, 0.0
            if now < not_before:
                self._seen[address] = (count, not_before)
                return not_before - now
            count += 1
            self._seen[address] = (count, now + _delay_s(count))
            while len(self._seen) > _MAX_ADDRESSES:
                self._seen.popitem(last=False)
            return 0.0

    def failed(self, address: str, *, now: float | None = None) -> None:
        """The password was wrong: the wait runs from now (the check itself takes a while)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            count, not_before = self._seen.pop(address, (1, 0.0))
            self._seen[address] = (count, max(not_before, now + _delay_s(count)))

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._seen.pop(address, None)

    def wait_s(self, address: str, *, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            _, not_before = self._seen.get(address, (0, 0.0))
        return max(0.0, not_before - now)


def _delay_s(failures: int) -> float:
    extra = failures - FREE_TRIES
    return 0.0 if extra <= 0 else min(MAX_DELAY_S, 2.0 ** (extra - 1))
