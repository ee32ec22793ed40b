"""The `ratatouille` command as users run it: a real subprocess on a real lake."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RATATOUILLE = str(Path(sys.executable).with_name("ratatouille"))


def run(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RATATOUILLE, *args],
        env={**os.environ, **env},
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {
        "RATATOUILLE_LAKE_ROOT": str(tmp_path / "lake"),
        "RATATOUILLE_STATE_DIR": str(tmp_path / "state"),
    }


def test_ingest_json_summary_and_tables(tmp_path, env) -> None:
    (tmp_path / "a.csv").write_text("x;y\n1;hello\n2;world\n")
    (tmp_path / "b.ndjson").write_text('{"k": 1}\n{"k": 2}\n{"k": 3}\n')
    r = run(["ingest", "a.csv", "b.ndjson", "--json"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    a, b = (json.loads(line) for line in r.stdout.splitlines())
    assert (a["dataset"], a["rows"], a["format"]) == ("a", 2, "csv")
    assert a["columns"] == [{"name": "x", "type": "BIGINT"}, {"name": "y", "type": "VARCHAR"}]
    assert (b["dataset"], b["rows"], b["format"]) == ("b", 3, "json")
    r = run(["ingest", "a.csv", "--dataset", "b", "--mode", "replace", "--json"], env, tmp_path)
    out = json.loads(r.stdout)
    assert out["replaced_batches"] == 1 and out["drift"]["removed"] == ["k"]

    listing = json.loads(run(["tables", "--json"], env, tmp_path).stdout)
    assert {(t["layer"], t["name"], t["rows"]) for t in listing} == {
        ("bronze", "a", 2),
        ("bronze", "b", 2),
    }
    human = run(["tables"], env, tmp_path).stdout
    assert "bronze.a" in human and "2 rows" in human


def test_ingest_failure_exit_code_and_message(tmp_path, env) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    r = run(["ingest", "empty.csv"], env, tmp_path)
    assert r.returncode == 1
    assert "Empty file" in r.stderr
    r = run(["ingest", "empty.csv", "--json"], env, tmp_path)
    assert json.loads(r.stdout)["title"] == "Empty file"
    assert not list((tmp_path / "lake" / "bronze").iterdir())


def test_ingest_rejects_bad_dataset_name(tmp_path, env) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    r = run(["ingest", "a.csv", "--dataset", "../../etc"], env, tmp_path)
    assert r.returncode == 1 and "Invalid dataset name" in r.stderr


def test_doctor_local_ok(tmp_path, env) -> None:
    r = run(["doctor"], env, tmp_path)
    assert r.returncode == 0, r.stdout
    assert "✔ duckdb httpfs" in r.stdout and "✔ bronze writable" in r.stdout


def test_doctor_explains_endpoint_with_scheme(tmp_path) -> None:
    env = {"RATATOUILLE_STORAGE": "s3", "RATATOUILLE_S3_ENDPOINT": "http://localhost:9000"}
    r = run(["doctor"], env, tmp_path)
    assert r.returncode == 1
    assert "RATATOUILLE_S3_ENDPOINT=localhost:9000" in r.stdout
    assert "RATATOUILLE_S3_USE_SSL=false" in r.stdout


def test_doctor_names_a_bad_setting(tmp_path) -> None:
    r = run(["doctor"], {"RATATOUILLE_STORAGE": "ftp"}, tmp_path)
    assert r.returncode == 1 and "storage" in r.stdout


@pytest.mark.s3
def test_doctor_s3(tmp_path, s3_env, s3_server) -> None:
    env = {
        f"RATATOUILLE_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in s3_env.items()
    }
    r = run(["doctor"], env, tmp_path)
    assert r.returncode == 0, r.stdout
    wrong = {**env, "RATATOUILLE_S3_SECRET_KEY": "wrong"}
    r = run(["doctor"], wrong, tmp_path)
    assert r.returncode == 1 and "S3 access denied" in r.stdout
    ro = {
        **env,
        "RATATOUILLE_S3_ACCESS_KEY": s3_server.readonly_key,
        "RATATOUILLE_S3_SECRET_KEY": s3_server.readonly_secret,
    }
    r = run(["doctor"], ro, tmp_path)
    assert r.returncode == 1 and "may write" in r.stdout


def test_sql_prints_tables_json_and_exports(tmp_path, env) -> None:
    (tmp_path / "a.csv").write_text("k,v\nx,1\ny,2\nx,3\n")
    assert run(["ingest", "a.csv"], env, tmp_path).returncode == 0
    q = "SELECT k, sum(v) AS total FROM bronze.a GROUP BY k ORDER BY k"
    r = run(["sql", q], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["k", "total"]
    assert r.stdout.splitlines()[2].split() == ["x", "4"]
    assert "2 rows" in r.stderr

    out = json.loads(run(["sql", q, "--format", "json"], env, tmp_path).stdout)
    assert out["rows"] == [{"k": "x", "total": 4}, {"k": "y", "total": 2}]
    assert out["columns"][1] == {"name": "total", "type": "HUGEINT"}
    assert out["truncated"] is False

    capped = json.loads(
        run(
            ["sql", "SELECT * FROM bronze.a", "--format", "json", "--max-rows", "2"], env, tmp_path
        ).stdout
    )
    assert (len(capped["rows"]), capped["truncated"]) == (2, True)

    r = run(["sql", "-", "-o", "all.csv"], env, tmp_path, stdin="SELECT * FROM bronze.a")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "all.csv").read_text().splitlines() == ['"k","v"', '"x",1', '"y",2', '"x",3']


@pytest.mark.parametrize(
    ("args", "title"),
    [
        (["sql", "COPY (SELECT 1) TO 'x.csv'"], "This statement is not allowed"),
        (["sql", "SELECT * FROM read_text('/etc/passwd')"], "Function not allowed"),
        (["sql", "SELECT * FROM gold.nothing"], "Unknown table or column"),
        (["sql", "SELECT 1", "--format", "parquet"], "No output file"),
        (
            ["sql", "SELECT sum(range) FROM range(1e11::BIGINT)", "--time-limit", "0.5"],
            "Time limit reached",
        ),
    ],
)
def test_sql_refusals_exit_non_zero_with_title_and_message(tmp_path, env, args, title) -> None:
    r = run(args, env, tmp_path)
    assert r.returncode == 1
    assert title in r.stderr and r.stdout == ""
    as_json = (
        json.loads(run([*args, "--format", "json"], env, tmp_path).stdout)
        if ("--format" not in args)
        else None
    )
    if as_json is not None:
        assert (as_json["ok"], as_json["title"]) == (False, title)


def test_invalid_settings_are_an_error_not_a_traceback(monkeypatch) -> None:
    from click.testing import CliRunner

    from lakehouse.cli.main import main

    monkeypatch.setenv("RATATOUILLE_STORAGE", "ftp")
    result = CliRunner().invoke(main, ["tables"])
    assert result.exit_code == 2
    assert "Invalid settings" in result.output and "storage" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
