"""A lake per test on each backend, exported as RATATOUILLE_* so Dagster resources, run
processes and notebook kernels open the same one. Imported by the pipeline test modules."""

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from lakehouse import Lakehouse, Settings
from tests.support.lakedirs import env_vars, lake_dirs

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
    for name, value in env_vars({**lake_dirs(tmp_path), "landing_settle_s": 0}).items():
        monkeypatch.setenv(name, value)
    if request.param == "s3":
        request.getfixturevalue("s3_env")  # exports RATATOUILLE_STORAGE=s3 and the server
    with Lakehouse(Settings()) as lk:
        yield lk


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst
