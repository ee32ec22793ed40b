"""Fresh data in seconds, on real processes: an upload (or a landing drop) starts one Dagster
run over the webserver's API that builds its dataset's silver and every gold table reading
it, and nothing else; two datasets build side by side. The sensors are slowed to once an
hour here, so only the fast lane can have started these runs."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from tusclient import client as tus

from lakehouse import Lakehouse, Settings, TableNotFoundError, upload_outcome
from lakehouse.uploads.fresh import LandingWatcher, PipelineNotStarted, upload_launch
from pipelines.serve import DagsterStack, free_port
from tests.pipelines.conftest import running_stack
from tests.support.tus_server import tus_server, wait_done

pytestmark = pytest.mark.slow

MODELS = {
    "sales_by_region": "SELECT region, sum(amount) AS amount FROM silver.sales GROUP BY region",
    "top_region": "SELECT region FROM gold.sales_by_region ORDER BY amount DESC LIMIT 1",
    "stock_total": "SELECT sum(qty) AS qty FROM silver.stock",
}
SALES = "region,amount\nnorth,10\nsouth,5\nnorth,2.5\n"
STOCK = "sku,qty\na,1\nb,2\n"
RUN = """query Run($id: ID!) { runOrError(runId: $id) { __typename
  ... on Run { status startTime endTime tags { key value } } } }"""


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterStack]:
    models = {name: f"-- description: {name}\n{sql}\n" for name, sql in MODELS.items()}
    # Sensors once an hour: the backstop stays out of the way.
    with running_stack(
        tmp_path, monkeypatch, models, sensor_interval_s=3600, landing_settle_s=0.5
    ) as s:
        yield s


def run_info(stack: DagsterStack, run_id: str, timeout_s: float = 120) -> dict[str, Any]:
    """The run once it has ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        data: Any = stack.graphql(RUN, {"id": run_id})
        run = data["data"]["runOrError"]
        if run.get("status") in ("SUCCESS", "FAILURE", "CANCELED"):
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
            return dict(run)
        assert time.monotonic() < deadline, f"run {run_id} did not end: {run}"
        time.sleep(0.2)


def upload(url: str, path: Path, dataset: str) -> str:
    uploader = tus.TusClient(url).uploader(
        str(path), metadata={"filename": path.name, "dataset": dataset}
    )
    uploader.upload()
    return str(uploader.url).rstrip("/").rsplit("/", 1)[-1]


def wait_run_id(settings: Settings, upload_id: str) -> str:
    deadline = time.monotonic() + 30
    while (outcome := upload_outcome(settings, upload_id)).run_id is None:
        assert outcome.run_error is None, outcome.run_error
        assert time.monotonic() < deadline, "no run was started for the upload"
        time.sleep(0.05)
    return outcome.run_id


def test_uploads_build_silver_and_their_gold_in_one_run_each_side_by_side(
    stack: DagsterStack, tmp_path: Path
) -> None:
    settings, lake = stack.settings, Lakehouse(stack.settings)
    (tmp_path / "sales.csv").write_text(SALES)
    (tmp_path / "stock.csv").write_text(STOCK)
    with tus_server(settings, launch=upload_launch) as (url, service):
        ids = {name: upload(url, tmp_path / f"{name}.csv", name) for name in ("sales", "stock")}
        for upload_id in ids.values():
            wait_done(service, upload_id)
        runs = {name: wait_run_id(settings, upload_id) for name, upload_id in ids.items()}
    info = {name: run_info(stack, run_id) for name, run_id in runs.items()}
    # The run workers came from the code server's fork server (warm imports), not a spawn.
    tree = psutil.Process(stack.procs["code-server"].pid).children(recursive=True)
    assert any("multiprocessing.forkserver" in " ".join(p.cmdline()) for p in tree)
    for name, run in info.items():
        assert run["status"] == "SUCCESS", run
        assert run["tags"]["dagster/partition"] == name
        assert run["tags"]["ratatouille/launched_from"] == "upload"
    # Each run built its dataset's silver and exactly the gold reading it (through gold too).
    built = {
        (layer, table): lake.snapshot(layer, table).run_id
        for layer, table in [
            ("silver", "sales"),
            ("silver", "stock"),
            ("gold", "sales_by_region"),
            ("gold", "top_region"),
            ("gold", "stock_total"),
        ]
    }
    assert built == {
        ("silver", "sales"): runs["sales"],
        ("gold", "sales_by_region"): runs["sales"],
        ("gold", "top_region"): runs["sales"],
        ("silver", "stock"): runs["stock"],
        ("gold", "stock_total"): runs["stock"],
    }
    assert lake.sql("SELECT * FROM gold.top_region").to_pylist() == [{"region": "north"}]
    # Side by side: neither waited for the other to end.
    sales, stock = info["sales"], info["stock"]
    assert sales["startTime"] < stock["endTime"] and stock["startTime"] < sales["endTime"]


def test_a_landing_drop_starts_its_run_at_once(stack: DagsterStack) -> None:
    settings, lake = stack.settings, Lakehouse(stack.settings)
    watcher = LandingWatcher(settings)
    folder = Path(lake.storage.uri("landing/sales/x")).parent
    folder.mkdir(parents=True)
    (folder / ".jan.csv.part").write_text(SALES)
    (folder / ".jan.csv.part").rename(folder / "jan.csv")
    deadline = time.monotonic() + 30
    while not (started := watcher.check()):
        assert time.monotonic() < deadline, "the watcher started no run"
        time.sleep(0.1)
    assert watcher.check() == []  # once per file
    run = run_info(stack, started[0])
    assert run["status"] == "SUCCESS", run
    assert run["tags"]["ratatouille/landing_file"] == "landing/sales/jan.csv"
    assert lake.snapshot("silver", "sales").run_id == started[0]
    assert lake.snapshot("gold", "top_region").run_id == started[0]
    assert lake.table("bronze", "sales").rows == 3
    assert not list(folder.iterdir())  # taken into bronze
    with pytest.raises(TableNotFoundError):
        lake.snapshot("gold", "stock_total")


def test_with_dagster_away_the_upload_lands_and_says_the_sensors_will_build_it(
    tmp_path: Path,
) -> None:
    settings = Settings(
        lake_root=tmp_path / "lake",
        state_dir=tmp_path / "state",
        dagster_url=f"http://127.0.0.1:{free_port()}",  # nobody listens
    )
    with pytest.raises(PipelineNotStarted, match="sensors build it once Dagster is back"):
        upload_launch(settings, "sales")
    (tmp_path / "sales.csv").write_text(SALES)
    with tus_server(settings, launch=upload_launch) as (url, service):
        upload_id = upload(url, tmp_path / "sales.csv", "sales")
        wait_done(service, upload_id)
        deadline = time.monotonic() + 20
        while (outcome := upload_outcome(settings, upload_id)).run_error is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert outcome.state == "ingested" and outcome.run_id is None
    assert "not reachable" in outcome.run_error
    assert Lakehouse(settings).table("bronze", "sales").rows == 3
