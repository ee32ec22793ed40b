"""Other engines read the lake's silver and gold Delta tables, with the playground's answers:
DuckDB's `delta` extension, Polars and delta-rs's own reader, on a local lake and on S3."""

import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable

from lakehouse import Lakehouse, Settings, duck
from tests.support.isolation import no_developer_config  # noqa: F401 - a fixture
from tests.support.lakedirs import lake_dirs

ORDERS = b"""order_id,customer,ordered_on,amount,note
1,ann,2024-01-05,10.50,first
2,bob,2024-01-06,20.25,
3,ann,2024-02-01,7.00,"with, comma"
3,ann,2024-02-01,7.00,"with, comma"
4,cid,2024-02-11,99.99,late
"""
GOLD = """SELECT customer, count(*) AS orders, sum(amount) AS revenue,
       min(ordered_on) AS first_order
FROM silver.orders GROUP BY customer"""
TABLES = {("silver", "orders"): "order_id", ("gold", "revenue"): "customer"}


pytestmark = pytest.mark.usefixtures("no_developer_config")


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lakehouse]:
    values: dict[str, object] = dict(lake_dirs(tmp_path))
    if request.param == "s3":
        values.update(request.getfixturevalue("s3_env"))
    with Lakehouse(Settings(**values)) as lk:  # type: ignore[arg-type]
        lk.ingest(io.BytesIO(ORDERS), dataset="orders", filename="orders.csv")
        lk.build_silver("orders")
        lk.publish("gold", "revenue", GOLD, run_id="interop")
        yield lk


def playground(lake: Lakehouse, layer: str, table: str, key: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = lake.query(
        f"SELECT * FROM {layer}.{table} ORDER BY {key}"
    ).table.to_pylist()
    return rows


def normal(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Values compared as text where engines pick different Python types for one value."""
    return [
        {k: str(v) if isinstance(v, Decimal | float) else v for k, v in r.items()} for r in rows
    ]


def test_playground_answers(lake: Lakehouse) -> None:
    assert playground(lake, "gold", "revenue", "customer") == [
        {"customer": "ann", "orders": 2, "revenue": 17.5, "first_order": _date(1, 5)},
        {"customer": "bob", "orders": 1, "revenue": 20.25, "first_order": _date(1, 6)},
        {"customer": "cid", "orders": 1, "revenue": 99.99, "first_order": _date(2, 11)},
    ]


def _date(month: int, day: int) -> Any:
    import datetime

    return datetime.date(2024, month, day)


def test_duckdb_delta_scan(lake: Lakehouse) -> None:
    con = duckdb.connect()
    duck.load_extension(con, "delta")
    if lake.settings.storage == "s3":
        duck.load_extension(con, "httpfs")
        con.execute(duck.s3_secret_sql(lake.settings))
    for (layer, table), key in TABLES.items():
        uri = lake.table_uri(layer, table)
        got = con.execute(f"SELECT * FROM delta_scan('{uri}') ORDER BY {key}").to_arrow_table()
        assert got.to_pylist() == playground(lake, layer, table, key)
    # Time travel: the first version of gold, from the log alone.
    lake.publish("gold", "revenue", "SELECT 'nobody' AS customer")
    uri = lake.table_uri("gold", "revenue")
    assert con.execute(f"SELECT count(*) FROM delta_scan('{uri}', version => 0)").fetchone() == (3,)
    assert con.execute(f"SELECT customer FROM delta_scan('{uri}')").fetchall() == [("nobody",)]


def test_polars(lake: Lakehouse) -> None:
    opts = lake.delta_storage_options() or None
    for (layer, table), key in TABLES.items():
        df = pl.read_delta(lake.table_uri(layer, table), storage_options=opts).sort(key)
        assert normal(df.to_dicts()) == normal(playground(lake, layer, table, key))
    lazy = pl.scan_delta(lake.table_uri("gold", "revenue"), storage_options=opts)
    assert lazy.select(pl.col("orders").sum()).collect().item() == 4


def test_deltalake_reader(lake: Lakehouse) -> None:
    opts = lake.delta_storage_options() or None
    for (layer, table), key in TABLES.items():
        dt = DeltaTable(lake.table_uri(layer, table), storage_options=opts)
        got = dt.to_pyarrow_table().sort_by(key).to_pylist()
        assert got == playground(lake, layer, table, key)
    # What built it is in the log, where every engine can see it.
    info = DeltaTable(lake.table_uri("gold", "revenue"), storage_options=opts).history(1)[0]
    assert info["ratatouille.run_id"] == "interop"
    assert info["ratatouille.sql"] == GOLD
    assert info["ratatouille.inputs"] == '{"silver.orders": "0"}'


def test_bronze_by_the_documented_rule(tmp_path: Path) -> None:
    """docs/architecture.md's rule for reading a bronze dataset, followed with Polars: the same
    rows as `bronze.<dataset>` (replace hides earlier batches; a new column is null before)."""
    import json

    with Lakehouse(Settings(**lake_dirs(tmp_path))) as lake:  # type: ignore[arg-type]
        for body, mode in [
            (b"id,name\n1,old\n", "append"),
            (b"id,name\n2,ann\n3,bob\n", "replace"),
            (b"id,name,vip\n4,cid,true\n", "append"),
        ]:
            lake.ingest(io.BytesIO(body), dataset="people", filename="p.csv", mode=mode)  # type: ignore[arg-type]
        expected = lake.query("SELECT * FROM bronze.people ORDER BY id").table.to_pylist()
        root = lake.settings.lake_root
    ms = [
        json.loads(p.read_text())
        for p in (root / "bronze" / "people").glob("batch=*/_manifest.json")
    ]
    ms.sort(key=lambda m: m["committed_id"] or m["batch_id"])
    start = max((i for i, m in enumerate(ms) if m["mode"] == "replace"), default=0)
    df = pl.concat(
        [pl.read_parquet(root / m["data_key"]) for m in ms[start:]], how="diagonal_relaxed"
    )
    assert df.sort("id").to_dicts() == expected
    assert [r["vip"] for r in expected] == [None, None, True]
