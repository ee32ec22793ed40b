"""Every setting is documented in .env.example and docs/configuration.md, and nothing else is."""

import re
from pathlib import Path

from lakehouse import Settings

ROOT = Path(__file__).resolve().parent.parent
ENV_NAMES = {f"RATATOUILLE_{name.upper()}" for name in Settings.model_fields}


def documented(path: Path) -> set[str]:
    return set(re.findall(r"RATATOUILLE_[A-Z0-9_]+", path.read_text()))


def test_env_example_lists_every_setting() -> None:
    names = set(
        re.findall(r"^(RATATOUILLE_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert names == ENV_NAMES


def test_configuration_doc_lists_every_setting() -> None:
    doc = ROOT / "docs" / "configuration.md"
    table = set(re.findall(r"^\| `(RATATOUILLE_[A-Z0-9_]+)`", doc.read_text(), re.M))
    assert table == ENV_NAMES
    assert documented(doc) <= ENV_NAMES, "the doc mentions a setting that does not exist"


def test_every_field_has_a_description() -> None:
    assert all(f.description for f in Settings.model_fields.values())


def test_settings_come_from_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RATATOUILLE_STORAGE", "s3")
    monkeypatch.setenv("RATATOUILLE_TABLE_HISTORY_HOURS", "9")
    monkeypatch.setenv("RATATOUILLE_S3_ENDPOINT", "")
    s = Settings()
    assert (s.storage, s.table_history_hours, s.s3_endpoint) == ("s3", 9, None)


def test_dotenv_is_read(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("RATATOUILLE_MAX_INGEST_MB=7\n")
    assert Settings().max_ingest_mb == 7
