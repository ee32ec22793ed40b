"""Daft on a local Ray cluster (a head and a worker node, from .venv-ray) reads the lake's
silver and gold Delta tables, on a local folder and on S3, and answers as DuckDB does.

The lake is built through the product's own path (ingest a CSV → silver → a gold table), the
same SQL goes to Daft (devtools/daft_runner.py, a driver in the cluster's environment) and to
the playground's `lake.query`, and the answers must match row for row.
"""

import datetime as dt
import decimal
import io
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.raycluster import RayCluster, alive
from lakehouse import Lakehouse, Settings
from tests.support.isolation import no_developer_config  # noqa: F401 - a fixture
from tests.support.lakedirs import lake_dirs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_developer_config")]

REGIONS = ["north", "south", "east", "west", "centre"]
GOLD = """SELECT region, count(amount) AS priced, sum(amount) AS revenue
FROM silver.orders GROUP BY region"""
# An aggregate, a filter and a join of silver with gold, in SQL both engines take as written.
QUERIES = {
    "aggregate": """SELECT region, count(*) AS orders, count(amount) AS priced,
       sum(amount) AS revenue, avg(quantity) AS avg_quantity,
       min(order_date) AS first_day, max(order_date) AS last_day
FROM silver.orders GROUP BY region""",
    "filter": """SELECT order_id, customer, region, order_date, amount, quantity
FROM silver.orders
WHERE amount > 400 AND order_date >= DATE '2025-03-01' AND region <> 'north'""",
    "join": """SELECT o.region, count(*) AS above_average, sum(o.amount) AS amount,
       max(g.revenue) AS region_revenue
FROM silver.orders o JOIN gold.region_revenue g ON o.region = g.region
WHERE o.amount > g.revenue / g.priced
GROUP BY o.region""",
    "gold": "SELECT * FROM gold.region_revenue",
}


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A head and a worker node from .venv-ray for the module; nothing of them may outlive it."""
    cluster = RayCluster(tmp_path_factory.mktemp("raycluster"))
    cluster.start()
    started = cluster.processes()
    yield cluster
    started |= cluster.processes()  # the Ray workers the jobs left running
    cluster.stop()
    left = alive(started)
    assert not left, f"Ray processes left after stop: {left}"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lakehouse]:
    values: dict[str, object] = dict(lake_dirs(tmp_path))
    if request.param == "s3":
        values.update(request.getfixturevalue("s3_env"))
    with Lakehouse(Settings(**values)) as lk:  # type: ignore[arg-type]
        yield lk


def orders_csv(rows: int = 3000, seed: int = 7) -> bytes:
    """Orders with what silver cleans: padded text, blank amounts, repeated rows."""
    rng = random.Random(seed)
    day0 = dt.date(2025, 1, 1)
    lines = ["order_id,customer,region,order_date,amount,quantity"]
    for i in range(rows):
        amount = "" if rng.random() < 0.02 else f"{rng.uniform(1, 900):.2f}"
        region = rng.choice(REGIONS)
        lines.append(
            f"{i},  cust{rng.randint(1, 400)} ,{region},"
            f"{day0 + dt.timedelta(days=rng.randint(0, 180))},{amount},{rng.randint(1, 20)}"
        )
    lines += lines[1:51]  # 50 exact duplicates: silver keeps one of each
    return ("\n".join(lines) + "\n").encode()


def build_lake(lake: Lakehouse) -> None:
    lake.ingest(io.BytesIO(orders_csv()), dataset="orders", filename="orders.csv")
    silver = lake.build_silver("orders")
    assert silver.rows == 3000 and silver.duplicates_dropped == 50
    lake.publish("gold", "region_revenue", GOLD)


def normalise(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def sort_key(row: list[Any]) -> tuple[Any, ...]:
    return tuple((v is None, round(v, 6) if isinstance(v, float) else v) for v in row)


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            a is not None
            and b is not None
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)  # sums in another order
        )
    return bool(a == b)


def duckdb_answers(lake: Lakehouse) -> dict[str, tuple[list[str], list[list[Any]]]]:
    out = {}
    for name, sql in QUERIES.items():
        r = lake.query(sql)
        assert not r.truncated
        rows = [[normalise(v) for v in row.values()] for row in r.table.to_pylist()]
        out[name] = (r.table.column_names, sorted(rows, key=sort_key))
    return out


def test_daft_on_ray_answers_like_duckdb(lake: Lakehouse, ray_cluster: RayCluster) -> None:
    build_lake(lake)
    tables = {
        "silver.orders": lake.table_uri("silver", "orders"),
        "gold.region_revenue": lake.table_uri("gold", "region_revenue"),
    }
    report = ray_cluster.run(
        {"tables": tables, "storage_options": lake.delta_storage_options(), "queries": QUERIES}
    )

    # The work ran on the cluster: Ray's runner, both nodes alive, Daft's actors on each.
    assert report["runner"] == "ray"
    nodes = {n["id"] for n in report["nodes"]}
    assert len(nodes) == 2 and sum(n["head"] for n in report["nodes"]) == 1
    assert {n["address"] for n in report["nodes"]} == {"127.0.0.1"}
    assert set(report["actors"]) == nodes, report["actors"]
    assert all("RaySwordfishActor" in placed for placed in report["actors"].values())

    expected = duckdb_answers(lake)
    for name, (columns, rows) in expected.items():
        got = report["queries"][name]
        assert got["columns"] == columns, name
        daft_rows = sorted(got["rows"], key=sort_key)
        assert len(daft_rows) == len(rows) > 0, name
        for mine, theirs in zip(daft_rows, rows, strict=True):
            assert all(same_value(a, b) for a, b in zip(mine, theirs, strict=True)), (
                f"{name}: Daft {mine} != DuckDB {theirs}"
            )
