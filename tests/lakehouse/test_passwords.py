"""The app password: hashes, constant-time checks, which setting wins."""

import pytest
from click.testing import CliRunner

from lakehouse import ConfigError, Settings
from lakehouse.cli.main import main
from lakehouse.passwords import check_hash, check_password, hash_password, login_required


def test_hash_roundtrip_and_salt() -> None:
    h = hash_password("s3cret", iterations=1_000)
    assert h.startswith("pbkdf2_sha256$1000$")
    assert check_hash("s3cret", h) and not check_hash("S3cret", h)
    assert hash_password("s3cret", iterations=1_000) != h, "a fresh salt every time"
    with pytest.raises(ConfigError):
        hash_password("")
    with pytest.raises(ConfigError, match="hash-password"):
        check_hash("x", "md5$abc")


def test_settings_decide() -> None:
    assert not login_required(Settings())
    assert check_password(Settings(), "anything")
    plain = Settings(app_password="open sesame")
    assert login_required(plain)
    assert check_password(plain, "open sesame") and not check_password(plain, "open")
    hashed = Settings(app_password_hash=hash_password("pw", iterations=1_000))
    assert check_password(hashed, "pw") and not check_password(hashed, "pW")


def test_cli_hash_password() -> None:
    result = CliRunner().invoke(main, ["hash-password"], input="pw\npw\n")
    assert result.exit_code == 0
    assert check_hash("pw", result.output.strip().splitlines()[-1])
