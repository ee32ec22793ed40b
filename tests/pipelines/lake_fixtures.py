"""A lake per test on each backend, exported as RATATOUILLE_* so Dagster resources, run
processes and notebook kernels open the same one. Imported by the pipeline test modules."""

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from lakehouse import Lakehouse, Settings

ORDERS_MODEL = """-- description: Revenue per customer from completed orders.
-- key: customer_id
-- check: min_rows(1)
SELECT customer_id, sum(amount) AS revenue, count(*) AS orders
FROM silver.orders
WHERE status = 'completed'
GROUP BY customer_id
"""


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def lake(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lakehouse]:
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "steps").mkdir()
    env = {
        "LAKE_ROOT": tmp_path / "lake",
        "STATE_DIR": tmp_path / "state",
        "MODELS_DIR": tmp_path / "models",
        "NOTEBOOK_STEPS_DIR": tmp_path / "steps",
        "DATASETS_FILE": tmp_path / "datasets.toml",
        "LANDING_SETTLE_S": 0,
    }
    for name, value in env.items():
        monkeypatch.setenv(f"RATATOUILLE_{name}", str(value))
    if request.param == "s3":
        request.getfixturevalue("s3_env")  # exports RATATOUILLE_STORAGE=s3 and the server
    with Lakehouse(Settings()) as lk:
        yield lk


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst
