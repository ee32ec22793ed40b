"""Weak secrets stop the compose stack before it starts (issue 13, finding 13), and the same
rule backs `ratatouille doctor`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse import Settings
from lakehouse.cli import doctor
from lakehouse.cli.secret_strength import weak_reason
from tests.report import Record
from tests.test_deploy import GOOD_SECRETS, ROOT, preflight_env

SECRET_NAMES = [
    "MINIO_ROOT_PASSWORD",
    "RATATOUILLE_S3_SECRET_KEY",
    "RATATOUILLE_S3_QUERY_SECRET_KEY",
    "DAGSTER_PG_PASSWORD",
    "JUPYTER_TOKEN",
    "RATATOUILLE_APP_PASSWORD",
]
# The finding's three, a product-name one, a keyboard walk, a repeat, and a secret that is the
# account's own name padded out.
WEAK = [
    "12345678",
    "password1",
    "minioadmin1",
    "Ratatouille2026!",
    "qwertyuiop123",
    "aaaaaaaaaaaaaaaa",
    "lakeroot-lakeroot",
]


def preflight(**changes: str) -> subprocess.CompletedProcess[str]:
    env = {**preflight_env(), **GOOD_SECRETS, **changes}
    return subprocess.run(
        ["bash", "deploy/preflight.sh"], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("secret", WEAK)
def test_preflight_refuses_a_weak_secret_in_every_role(secret: str, record: Record) -> None:
    """Every secret the stack uses set to each weak value; the value is never printed."""
    out = preflight(**dict.fromkeys(SECRET_NAMES, secret))
    assert out.returncode == 1, (out.stdout, out.stderr)
    for name in SECRET_NAMES:
        assert f"- {name} " in out.stderr, (name, out.stderr)
    assert secret not in out.stderr + out.stdout, "a secret was printed"
    record(f"preflight with {secret!r} as each of {len(SECRET_NAMES)} secrets", "refused")


def test_preflight_accepts_strong_secrets(record: Record) -> None:
    strong = {name: os.urandom(18).hex() for name in SECRET_NAMES}
    out = preflight(**strong)
    assert out.returncode == 0, out.stderr
    assert "secrets look fine" in out.stdout
    record("preflight with random 36-character secrets", "accepted")


def test_preflight_fails_closed_when_the_check_cannot_run(record: Record) -> None:
    """No Python to run the check must not read as a pass."""
    out = subprocess.run(
        ["bash", "deploy/preflight.sh"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "/nonexistent", **GOOD_SECRETS},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode == 0:  # /usr/bin/python3 could import lakehouse: nothing to prove here
        pytest.skip("the system python3 has the library installed")
    assert "could not run" in out.stderr
    record("preflight where python3 cannot import the library", "refused (fails closed)")


@pytest.mark.parametrize("secret", WEAK)
def test_weak_reason_names_no_secret(secret: str) -> None:
    reason = weak_reason(secret, ["lakeroot"])
    assert reason and secret not in reason


def test_doctor_flags_weak_secrets_that_are_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    monkeypatch.chdir(tmp_path)
    base = {"lake_root": tmp_path / "lake", "state_dir": tmp_path / "state"}
    weak = Settings(**base, app_password="password1", session_secret="minioadmin1")  # type: ignore[arg-type]
    check = next(c for c in doctor.run_checks(lambda: weak) if c.name == "secrets")
    assert not check.ok
    assert (
        "RATATOUILLE_APP_PASSWORD" in check.detail and "RATATOUILLE_SESSION_SECRET" in check.detail
    )
    assert "password1" not in check.detail + check.fix
    strong = Settings(**base, app_password=os.urandom(18).hex())  # type: ignore[arg-type]
    assert next(c for c in doctor.run_checks(lambda: strong) if c.name == "secrets").ok
    record("ratatouille doctor with a weak app password and session secret", "both flagged")


def test_module_runs_as_the_script_calls_it() -> None:
    data = b"MINIO_ROOT_USER\0lakeroot\0MINIO_ROOT_PASSWORD\0lakeroot2026\0"
    out = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli.secret_strength"], input=data, capture_output=True
    )
    assert out.returncode == 3 and out.stdout.startswith(b"MINIO_ROOT_PASSWORD ")
