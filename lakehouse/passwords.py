"""The app password: PBKDF2 hashes for `.env` and constant-time checks."""

import base64
import hashlib
import hmac
import secrets

from lakehouse.errors import ConfigError
from lakehouse.settings import Settings

SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256; ~0.3 s a check here


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


def login_required(settings: Settings) -> bool:
    return bool(settings.app_password or settings.app_password_hash)


def check_password(settings: Settings, password: str) -> bool:
    """True if `password` is the app's; compared in constant time."""
    if settings.app_password_hash:
        return check_hash(password, settings.app_password_hash)
    if settings.app_password:
        expected = settings.app_password.get_secret_value().encode()
        return hmac.compare_digest(password.encode(), expected)
    return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
