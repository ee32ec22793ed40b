"""A real Dagster (code server, webserver, daemon) for the app's tests: one per session, on a
small lake whose orders have already gone bronze → silver → gold when the first test starts.

The data is chosen so there is something to report: `orders` repeats an order id (silver's
`key_unique` check fails), has an order without a customer (the gold model's
`not_null(customer_id)` check fails), and the model `flaky` does not build. Registered by
tests/app/conftest.py, so every module shares the one stack.
"""

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakehouse import Lakehouse, Settings
from pipelines.serve import DagsterStack, free_port
from streamlit_app.dagster_client import IN_FLIGHT, DagsterClient, RunInfo
from tests.support.lakedirs import env_vars, lake_dirs

ORDERS = """order_id,customer_id,amount,status,order_date
1,a,10,completed,2025-01-01
2,b,5,completed,2025-01-02
3,,7,open,2025-01-02
3,c,8,open,2025-01-03
"""
MODEL = """-- description: Revenue per customer.
-- check: not_null(customer_id)
-- check: min_rows(1)
SELECT customer_id, sum(amount) AS revenue FROM silver.orders GROUP BY customer_id
"""
# Fails until a test fixes it: automation's first gold run fails on it, so there are failed
# runs to show and to re-run from the start.
BROKEN_MODEL = "-- description: Fails until fixed.\nSELECT nope FROM silver.orders\n"
BUILT = ("silver/datasets", "gold/customer_revenue", "gold/daily_orders")


@dataclass
class DagsterApp:
    stack: DagsterStack
    client: DagsterClient
    env: dict[str, str]  # the RATATOUILLE_* that point the app at this lake and this Dagster
    root: Path

    def wait_for_run(self, run_id: str, timeout_s: float = 60) -> RunInfo:
        """The run once it has finished, however it ended."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.client.run(run_id)
            if run is not None and run.status not in IN_FLIGHT:
                return run
            assert time.monotonic() < deadline, f"run {run_id} still {run and run.status}"
            time.sleep(0.25)

    def wait_until_settled(self, timeout_s: float = 180, quiet_s: float = 2) -> None:
        """Silver and gold are built with their checks evaluated, and no run has been
        queued, going or ending for `quiet_s` (a sensor may follow one run with another).
        The timeout leaves room for the freshness backstop: automation can miss an update."""
        deadline = time.monotonic() + timeout_s
        while True:
            assets = {a.name: a for a in self.client.assets()}
            built = all(
                name in assets
                and assets[name].last_materialized
                and all(c.passed is not None for c in assets[name].checks)
                for name in BUILT
            )
            if built and self._quiet_for(quiet_s):
                return
            assert time.monotonic() < deadline, f"{BUILT} not built and checked in time"
            time.sleep(0.5)

    def _quiet_for(self, seconds: float) -> bool:
        if self.client.runs(statuses=list(IN_FLIGHT), with_errors=False):
            return False
        newest = self.client.runs(limit=1, with_errors=False)
        ended = newest[0].ended if newest else None
        return ended is None or (datetime.now(UTC) - ended).total_seconds() >= seconds


@pytest.fixture(scope="session")
def dagster_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterApp]:
    root = tmp_path_factory.mktemp("dagster_app")
    dirs = lake_dirs(root)
    (dirs["models_dir"] / "customer_revenue.sql").write_text(MODEL)
    (dirs["models_dir"] / "flaky.sql").write_text(BROKEN_MODEL)
    dirs["datasets_file"].write_text('[datasets.orders]\nkey = "order_id"\n')
    env = env_vars({**dirs, "sensor_interval_s": 1, "landing_settle_s": 0})
    # The stack's processes inherit this environment and working folder (no stray .env);
    # the tests' own environment is restored once they run.
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("RATATOUILLE_", "DAGSTER_")):
                mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        mp.chdir(root)
        settings = Settings()
        stack = DagsterStack(settings, port=free_port()).start()
    try:
        app = DagsterApp(
            stack, DagsterClient(stack.url), {**env, "RATATOUILLE_DAGSTER_URL": stack.url}, root
        )
        (root / "orders.csv").write_text(ORDERS)
        with Lakehouse(settings) as lake:
            lake.ingest(root / "orders.csv")
        app.wait_until_settled()
        yield app
    finally:
        stack.stop()
