"""The pipelines page against a real Dagster (tests/app/dagster_fixtures.py), driven by AppTest,
and the health computations behind it."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from pipelines.serve import free_port
from streamlit_app.components import health
from streamlit_app.dagster_client import AssetCheckStatus, AssetInfo, RunInfo
from tests.app.dagster_fixtures import DagsterApp

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app" / "streamlit_app.py")


def clean_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], cwd: Path) -> None:
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(cwd)
    st.cache_resource.clear()  # Lakehouse and Dagster client rebuilt from these settings


@pytest.fixture
def app_env(dagster_app: DagsterApp, monkeypatch: pytest.MonkeyPatch) -> DagsterApp:
    """The app pointed at the session's Dagster and lake, once its runs have settled."""
    clean_env(monkeypatch, dagster_app.env, dagster_app.root)
    dagster_app.wait_until_settled()
    return dagster_app


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    return at.switch_page("app_pages/pipelines.py").run()


def frame(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with this column."""
    found = [df.value for df in at.dataframe if column in df.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


@pytest.mark.slow
def test_page_shows_tiles_runs_freshness_and_checks(app_env: DagsterApp) -> None:
    at = open_page()
    assert "is up" in at.sidebar.caption[1].value
    assert not at.exception
    assert not at.error
    tiles = [(m.label, m.value) for m in at.metric]
    assert [label for label, _ in tiles] == ["Succeeded", "Failed", "Failure rate",
                                             "Median duration"] * 2  # fmt: skip
    succeeded_24h, failed_24h, rate_24h, median_24h = (v for _, v in tiles[:4])
    assert int(succeeded_24h) >= 1  # silver
    assert int(failed_24h) >= 1  # gold, with the broken model
    assert rate_24h.endswith("%")
    assert median_24h.endswith(" s")

    runs = frame(at, "run")
    assert len(runs) >= 2
    assert runs["run"].str.startswith(f"{app_env.stack.url}/runs/").all()
    assert "silver/datasets" in set(runs["assets"])

    fresh = frame(at, "stale").set_index("asset")
    gold = fresh.loc[f"{app_env.stack.url}/assets/gold/customer_revenue"]
    assert gold["stale"] == "fresh"
    assert gold["age"].endswith((" s", " min"))

    checks = frame(at, "check")
    assert checks.iloc[0]["result"] == "❌ failed"  # failed ones first
    failed = checks[checks["result"] == "❌ failed"]
    assert ("gold/customer_revenue", "not_null_customer_id") in set(
        zip(failed["asset"], failed["check"], strict=True)
    )
    assert "1 row(s) have no customer_id" in set(failed["description"])

    assert set(frame(at, "sensor")["status"]) == {"running"}
    assert set(frame(at, "daemon")["healthy"]) == {"✅"}


@pytest.mark.slow
def test_materialize_button_launches_a_run(app_env: DagsterApp) -> None:
    at = open_page()
    assert "bronze/datasets" not in at.selectbox(key="pipe_asset").options  # ingest writes it
    at.selectbox(key="pipe_asset").set_value("gold/daily_orders").run()
    at.button(key="pipe_materialize").click().run()
    assert not at.exception
    run_id = at.session_state["pipe_state"].launched
    assert run_id[:8] in at.success[0].value
    run = app_env.wait_for_run(run_id)
    assert (run.status, run.assets) == ("SUCCESS", ["gold/daily_orders"])


def test_unreachable_dagster_is_said_plainly(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    env = {
        "RATATOUILLE_LAKE_ROOT": str(tmp_path / "lake"),
        "RATATOUILLE_STATE_DIR": str(tmp_path / "state"),
        "RATATOUILLE_DAGSTER_URL": url,
    }
    clean_env(monkeypatch, env, tmp_path)
    at = open_page()
    assert not at.exception
    message = at.error[0].value.replace("\\", "")  # the message is shown Markdown-escaped
    assert f"Dagster is not reachable at {url}" in message
    assert "make run" in message and "RATATOUILLE_DAGSTER_URL" in message
    assert not at.metric and not at.dataframe


def run(status: str, created: datetime, duration_s: float | None = None) -> RunInfo:
    started = created + timedelta(seconds=1)
    ended = started + timedelta(seconds=duration_s) if duration_s is not None else None
    return RunInfo("r", status, "__ASSET_JOB", [], None, created, started, ended, duration_s,
                   None, {}, "u")  # fmt: skip


def test_run_stats_count_the_window_only() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    runs = [
        run("SUCCESS", now - timedelta(hours=1), 2.0),
        run("FAILURE", now - timedelta(hours=2), 4.0),
        run("SUCCESS", now - timedelta(hours=3), 9.0),
        run("STARTED", now - timedelta(minutes=1)),
        run("CANCELED", now - timedelta(hours=4), 1.0),
        run("FAILURE", now - timedelta(days=2), 100.0),  # outside the 24 h window
    ]
    day = health.run_stats(runs, now - timedelta(days=1))
    assert (day.runs, day.succeeded, day.failed, day.in_flight) == (5, 2, 1, 1)
    assert day.failure_rate == pytest.approx(1 / 3)
    assert day.median_duration_s == 4.0  # of finished runs: 2, 4, 9 (canceled not counted)
    empty = health.run_stats([], now)
    assert (empty.failure_rate, empty.median_duration_s) == (None, None)
    assert (health.format_rate(None), health.format_duration(None)) == ("–", "–")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "0.2 s"), (59.9, "59.9 s"), (61, "1 min 1 s"), (3600 + 120, "1 h 2 min")],
)
def test_format_duration(seconds: float, text: str) -> None:
    """Each unit boundary: seconds with a decimal, then minutes, then hours."""
    assert health.format_duration(seconds) == text


def asset(
    name: str, built: datetime | None, checks: list[AssetCheckStatus] | None = None
) -> AssetInfo:
    return AssetInfo(name.split("/"), built, None, checks or [], None, None, f"u/{name}")


def test_freshness_puts_stale_and_oldest_first() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    items = health.freshness(
        [
            asset("gold/new", now - timedelta(hours=1)),
            asset("gold/old", now - timedelta(hours=30)),
            asset("gold/never", None),
            asset("gold/older", now - timedelta(hours=20)),
        ],
        now,
        stale_after_h=24,
    )
    assert [(f.asset, f.stale) for f in items] == [
        ("gold/never", True),
        ("gold/old", True),
        ("gold/older", False),
        ("gold/new", False),
    ]
    assert items[1].age_h == pytest.approx(30)


def test_check_results_put_failures_first() -> None:
    def check(name: str, passed: bool | None, severity: str | None = "ERROR") -> AssetCheckStatus:
        return AssetCheckStatus(name, passed, severity, None, None)

    results = health.check_results(
        [
            asset("gold/a", None, [check("ok", True), check("drift", False, "WARN")]),
            asset("gold/b", None, [check("pending", None, None), check("key", False)]),
        ]
    )
    assert [c.name for _, c in results] == ["key", "drift", "pending", "ok"]
