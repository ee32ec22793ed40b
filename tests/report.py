"""The reliability report: every test that takes the `record` fixture states what it tried and
what held; the session prints the table and writes it to artifacts/reliability/report.md, so
`make reliability` (tests/reliability and tests/security) reads as a report.

RELIABILITY_LOAD_S is how long the concurrent load runs (short in CI, 300 s in the full run).
"""

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "artifacts" / "reliability" / "report.md"


def load_seconds() -> float:
    return float(os.environ.get("RELIABILITY_LOAD_S", "20"))


@dataclass
class Row:
    suite: str
    tried: str
    held: str
    figures: str = ""
    outcome: str = "…"
    seconds: float = 0.0


@dataclass
class _Report:
    rows: list[Row] = field(default_factory=list)


_REPORT = _Report()


Record = Callable[..., Row]


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Iterator[Record]:
    """`record(tried, held, figures="")` adds a row; the test's outcome fills in its verdict."""
    path = Path(str(request.node.fspath))
    suite = path.stem.removeprefix("test_")
    if path.parent.name != "reliability":
        suite = f"{path.parent.name}: {suite}"
    mine: list[Row] = []
    started = time.monotonic()

    def add(tried: str, held: str, figures: str = "") -> Row:
        row = Row(suite, tried, held, figures)
        mine.append(row)
        _REPORT.rows.append(row)
        return row

    yield add
    rep = getattr(request.node, "rep_call", None)
    outcome = "held" if rep is not None and rep.passed else "FAILED"
    for row in mine:
        row.outcome = outcome
        row.seconds = time.monotonic() - started


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    rep = yield
    if rep.when == "call":
        item.rep_call = rep  # type: ignore[attr-defined]
    return rep


def _table(rows: list[Row]) -> str:
    lines = [
        "| suite | tried | held | figures | result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        cells = [r.suite, r.tried, r.held, r.figures, f"{r.outcome} ({r.seconds:.0f} s)"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _REPORT.rows:
        return
    table = _table(_REPORT.rows)
    terminalreporter.write_sep("=", "reliability: what was tried and what held")
    terminalreporter.write_line(table)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        f"# Reliability report\n\nRELIABILITY_LOAD_S={load_seconds():g}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n\n{table}\n"
    )
    terminalreporter.write_line(f"report: {REPORT.relative_to(ROOT)}")
