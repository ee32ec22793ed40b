"""Is a secret (password, secret key, token) too weak to guard the lake?

One rule for the compose preflight (deploy/preflight.sh), `ratatouille doctor` and the login:
at least `MIN_LENGTH` characters, and zxcvbn (Dropbox's estimator: common-password lists,
dictionary words, keyboard walks, dates, l33t) rates it at least `MIN_SCORE` of 4. Names of
the product, its services and the account the secret belongs to count as dictionary words, and
a secret must still be strong with them taken out: `ratatouille-2024!` is not a password.
Reasons never contain the secret.

`python -m lakehouse.cli.secret_strength` reads NUL-separated name/value pairs on stdin (secrets
stay out of argv and the process list) and prints one `NAME ...` line per weak secret; names
ending in `_USER` or `_ACCESS_KEY` are account names: context for the others, not checked.
Exit status 3 when one is weak (1 is Python's own failure, which the caller must not
take for a pass).
"""

import re
import sys
from collections.abc import Iterable

from zxcvbn import zxcvbn

MIN_LENGTH = 12
# zxcvbn's 3: "safely unguessable", about 10^8 guesses or more.
MIN_SCORE = 3
# zxcvbn looks at the first 100 characters only; longer secrets are not weaker for it.
_SCORED = 100
CONTEXT = (
    "ratatouille",
    "lakehouse",
    "minio",
    "minioadmin",
    "dagster",
    "postgres",
    "jupyter",
    "streamlit",
    "admin",
)
# Variables naming an account (context for the secrets, not rated themselves).
_ACCOUNT_SUFFIXES = ("_USER", "_ACCESS_KEY")


def weak_reason(secret: str, user_inputs: Iterable[str] = ()) -> str | None:
    """Why `secret` is too weak, or None when it is fine."""
    words = sorted(
        {w.lower() for w in (*CONTEXT, *user_inputs) if len(w) >= 3}, key=len, reverse=True
    )
    reason = _weak(secret, words)
    if reason:
        return reason
    rest = secret
    for word in words:
        rest = re.sub(re.escape(word), "", rest, flags=re.IGNORECASE)
    if rest != secret and _weak(rest, words):
        return "is weak without the product's, a service's or the user's name in it"
    return None


def _weak(secret: str, words: list[str]) -> str | None:
    if len(secret) < MIN_LENGTH:
        return f"is {len(secret)} characters; use at least {MIN_LENGTH}"
    result = zxcvbn(secret[:_SCORED], user_inputs=words)
    if result["score"] < MIN_SCORE:
        warning = str(result["feedback"].get("warning") or "").rstrip(".")
        why = f" ({warning[0].lower()}{warning[1:]})" if warning else ""
        return f"is easy to guess{why}"
    return None


def _main(data: bytes) -> int:
    fields = data.decode("utf-8", "replace").split("\0")
    pairs = list(zip(fields[0::2], fields[1::2], strict=False))
    users = [v for n, v in pairs if n.endswith(_ACCOUNT_SUFFIXES) and v]
    weak = 0
    for name, value in pairs:
        if not value or name.endswith(_ACCOUNT_SUFFIXES):
            continue
        reason = weak_reason(value, users)
        if reason:
            print(f"{name} {reason}; choose a long random one (e.g. `openssl rand -hex 24`).")
            weak += 1
    return 3 if weak else 0


if __name__ == "__main__":
    sys.exit(_main(sys.stdin.buffer.read()))
