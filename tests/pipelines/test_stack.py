"""The whole loop on real processes: code server, webserver and daemon, a file dropped into
landing, and the gold table changes with no further action."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse import Lakehouse, TableNotFoundError
from pipelines.serve import DagsterStack
from tests.pipelines.conftest import running_stack

pytestmark = pytest.mark.slow

MODEL = """-- description: Sales per region.
-- key: region
SELECT region, sum(amount) AS amount, count(*) AS sales
FROM silver.sales
GROUP BY region
"""


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterStack]:
    models = {"sales_by_region": MODEL}
    with running_stack(tmp_path, monkeypatch, models, sensor_interval_s=1, landing_settle_s=1) as s:
        yield s


def drop(lake: Lakehouse, name: str, text: str) -> None:
    """Like a user's copy: written under a temporary name, then renamed into landing."""
    folder = Path(lake.storage.uri("landing/sales/x")).parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.part"
    tmp.write_text(text)
    tmp.rename(folder / name)


def wait_for_gold(lake: Lakehouse, previous: str | None, timeout_s: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if lake.snapshot("gold", "sales_by_region").snapshot_id != previous:
                return time.monotonic() - started
        except TableNotFoundError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"gold.sales_by_region did not change within {timeout_s:.0f} s")


def test_file_in_landing_reaches_gold(stack: DagsterStack) -> None:
    assert stack.daemon_statuses()["SENSOR"]
    lake = Lakehouse(stack.settings)
    drop(lake, "jan.csv", "region,amount\nnorth,10\nsouth,5\nnorth,2.5\n")
    first = wait_for_gold(lake, None)
    assert lake.sql("SELECT * FROM gold.sales_by_region ORDER BY region").to_pylist() == [
        {"region": "north", "amount": 12.5, "sales": 2},
        {"region": "south", "amount": 5.0, "sales": 1},
    ]
    assert not any(lake.storage.list_objects("landing/sales/"))
    before = lake.snapshot("gold", "sales_by_region").snapshot_id

    drop(lake, "feb.csv", "region,amount\nsouth,1\neast,7\n")
    second = wait_for_gold(lake, before)
    rows = lake.sql("SELECT * FROM gold.sales_by_region ORDER BY region").to_pylist()
    assert rows == [
        {"region": "east", "amount": 7.0, "sales": 1},
        {"region": "north", "amount": 12.5, "sales": 2},
        {"region": "south", "amount": 6.0, "sales": 2},
    ]
    print(f"landing → gold: {first:.1f} s for a new dataset, {second:.1f} s for a new batch")

    # A new model file appears after a code-location reload, with no restart, and builds.
    models = stack.settings.models_dir
    (models / "top_region.sql").write_text(
        "SELECT region FROM gold.sales_by_region ORDER BY amount DESC LIMIT 1"
    )
    stack.reload()
    deadline = time.monotonic() + 90
    while True:
        try:
            top = lake.sql("SELECT * FROM gold.top_region").to_pylist()
            break
        except Exception:  # noqa: BLE001 - not built yet
            assert time.monotonic() < deadline, "the new model was not built after a reload"
            time.sleep(0.5)
    assert top == [{"region": "north"}]
