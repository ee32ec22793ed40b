"""Pipeline health from what Dagster reports: run statistics, freshness, check results, and the
rows the pipelines page shows. Plain functions, no Streamlit calls: tested without a browser."""

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from streamlit_app.dagster_client import (
    IN_FLIGHT,
    AssetCheckStatus,
    AssetInfo,
    DaemonInfo,
    DagsterClient,
    RunInfo,
    SensorInfo,
)

RECENT_RUNS = 50  # rows in the runs table
WINDOW_RUNS = 1000  # runs read for the 7-day tiles; more than that and the tiles say so
ERROR_CHARS = 300  # of a run's error in the table; the Dagster UI has the rest
STATUS_ICONS = {"SUCCESS": "✅", "FAILURE": "❌", "CANCELED": "⏹️", "QUEUED": "⏳"}


@dataclass(frozen=True)
class RunStats:
    runs: int
    succeeded: int
    failed: int
    in_flight: int
    failure_rate: float | None  # failed / (succeeded + failed); None before any finished
    median_duration_s: float | None  # of finished runs


@dataclass(frozen=True)
class Freshness:
    asset: str
    last_materialized: datetime | None
    age_h: float | None
    stale: bool  # never built, or older than the stale_after_h setting
    url: str


@dataclass(frozen=True)
class Health:
    """Everything the page shows, read from Dagster at one moment."""

    now: datetime
    day: RunStats
    week: RunStats
    week_truncated: bool  # the 7-day tiles count only the newest WINDOW_RUNS runs
    runs: list[RunInfo]
    assets: list[AssetInfo]
    sensors: list[SensorInfo]
    daemons: list[DaemonInfo]


def load_health(client: DagsterClient, now: datetime | None = None) -> Health:
    now = now or datetime.now(UTC)
    week = client.runs(since=now - timedelta(days=7), limit=WINDOW_RUNS, with_errors=False)
    return Health(
        now=now,
        day=run_stats(week, now - timedelta(days=1)),
        week=run_stats(week, now - timedelta(days=7)),
        week_truncated=len(week) >= WINDOW_RUNS,
        runs=client.runs(limit=RECENT_RUNS),
        assets=client.assets(),
        sensors=client.sensors(),
        daemons=client.daemons(),
    )


def run_stats(runs: list[RunInfo], since: datetime) -> RunStats:
    """Counts, failure rate and median duration of the runs created since `since`."""
    window = [r for r in runs if r.created >= since]
    succeeded = sum(r.status == "SUCCESS" for r in window)
    failed = sum(r.status == "FAILURE" for r in window)
    durations = [
        r.duration_s
        for r in window
        if r.status in ("SUCCESS", "FAILURE") and r.duration_s is not None
    ]
    return RunStats(
        runs=len(window),
        succeeded=succeeded,
        failed=failed,
        in_flight=sum(r.status in IN_FLIGHT for r in window),
        failure_rate=failed / (succeeded + failed) if succeeded + failed else None,
        median_duration_s=statistics.median(durations) if durations else None,
    )


def freshness(assets: list[AssetInfo], now: datetime, stale_after_h: float) -> list[Freshness]:
    """Age of each asset's latest materialization; stale ones first, then the oldest."""
    out = []
    for a in assets:
        age_h = (now - a.last_materialized).total_seconds() / 3600 if a.last_materialized else None
        stale = age_h is None or age_h > stale_after_h
        out.append(Freshness(a.name, a.last_materialized, age_h, stale, a.url))
    never = float("inf")
    return sorted(
        out, key=lambda f: (not f.stale, -(never if f.age_h is None else f.age_h), f.asset)
    )


def check_results(assets: list[AssetInfo]) -> list[tuple[AssetInfo, AssetCheckStatus]]:
    """The latest result of every check: failed errors, failed warnings, not run, passed."""
    pairs = [(a, c) for a in assets for c in a.checks]
    return sorted(pairs, key=lambda p: (_check_rank(p[1]), p[0].name, p[1].name))


def _check_rank(check: AssetCheckStatus) -> int:
    if check.passed is False:
        return 0 if check.severity != "WARN" else 1
    return 2 if check.passed is None else 3


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_rate(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.0%}"


def run_rows(runs: list[RunInfo]) -> list[dict[str, Any]]:
    return [
        {
            "status": f"{STATUS_ICONS.get(r.status, '▶️')} {r.status.lower()}",
            "run": r.url,
            "created": r.created,
            "duration": format_duration(r.duration_s),
            "assets": ", ".join(r.assets) or r.job,
            "partition": r.partition,
            "error": _shorten(r.error),
        }
        for r in runs
    ]


def freshness_rows(items: list[Freshness]) -> list[dict[str, Any]]:
    return [
        {
            "asset": f.url,
            "stale": "⚠️ stale" if f.stale else "fresh",
            "age": "never built" if f.age_h is None else format_duration(f.age_h * 3600),
            "last materialized": f.last_materialized,
        }
        for f in items
    ]


def check_rows(results: list[tuple[AssetInfo, AssetCheckStatus]]) -> list[dict[str, Any]]:
    outcome = {True: "✅ passed", False: "❌ failed", None: "… not run"}
    return [
        {
            "result": outcome[c.passed],
            "asset": a.name,
            "check": c.name,
            "partition": c.partition,
            "severity": c.severity,
            "description": c.description,
            "when": c.when,
        }
        for a, c in results
    ]


def sensor_rows(sensors: list[SensorInfo], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "sensor": s.name,
            "status": s.status.lower(),
            "last tick": _ago(s.last_tick, now),
            "tick": (s.last_tick_status or "").lower() or None,
            "error": _shorten(s.error),
        }
        for s in sensors
    ]


def daemon_rows(daemons: list[DaemonInfo], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "daemon": d.type,
            "healthy": "✅" if d.healthy else "❌",
            "heartbeat": _ago(d.last_heartbeat, now),
            "error": _shorten(d.error),
        }
        for d in daemons
    ]


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    return f"{format_duration(max(0.0, (now - when).total_seconds()))} ago"


def _shorten(text: str | None) -> str | None:
    """One line for a table cell: DuckDB's caret under the error means nothing there."""
    if not text:
        return None
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
