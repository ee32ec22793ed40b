"""Lineage from the inputs each snapshot records: bronze → silver → gold and back."""

import io

import pyarrow as pa

from lakehouse import Lakehouse
from lakehouse.query.inputs import query_inputs
from lakehouse.tables import lineage


def ingest(lake: Lakehouse, dataset: str, text: str) -> None:
    lake.ingest(io.BytesIO(text.encode()), dataset=dataset, filename=f"{dataset}.csv")


def build(lake: Lakehouse) -> None:
    ingest(lake, "orders", "id,customer_id,amount\n1,1,9.5\n2,2,3\n3,1,4\n")
    ingest(lake, "customers", "id,name\n1,Ann\n2,Bo\n")
    lake.build_silver("orders")
    lake.build_silver("customers")
    lake.publish(
        "gold",
        "revenue",
        "SELECT c.name, sum(o.amount) AS revenue FROM silver.orders o "
        "JOIN silver.customers c ON c.id = o.customer_id GROUP BY ALL",
    )
    lake.publish("gold", "top", "SELECT * FROM gold.revenue ORDER BY revenue DESC LIMIT 1")


def test_upstream_and_downstream_through_the_layers(lake: Lakehouse) -> None:
    build(lake)
    assert lineage.upstream(lake, "bronze", "orders") == []
    assert lineage.downstream(lake, "bronze", "orders") == ["silver.orders"]
    assert lineage.upstream(lake, "silver", "orders") == ["bronze.orders"]
    assert lineage.downstream(lake, "silver", "orders") == ["gold.revenue"]
    assert lineage.upstream(lake.storage, "gold", "revenue") == [
        "silver.customers",
        "silver.orders",
    ]
    assert lineage.downstream(lake.storage, "gold", "revenue") == ["gold.top"]
    both = lineage.lineage(lake, "gold", "top")
    assert (both.upstream, both.downstream) == (["gold.revenue"], [])


def test_unknown_inputs_and_rollback(lake: Lakehouse) -> None:
    build(lake)
    first = lake.snapshot("gold", "top").snapshot_id
    # Arrow carries no lineage: the new snapshot reads nothing the lake knows of.
    lake.publish("gold", "top", pa.table({"name": ["Ann"]}))
    assert lineage.upstream(lake, "gold", "top") == []
    assert lineage.downstream(lake, "gold", "revenue") == []
    history = lineage.snapshot_history(lake, "gold", "top")
    assert [h.current for h in history] == [True, False]
    # A rollback brings the old snapshot's inputs back with it.
    lake.restore("gold", "top", first)
    assert lineage.upstream(lake, "gold", "top") == ["gold.revenue"]
    assert lineage.downstream(lake, "gold", "revenue") == ["gold.top"]
    # The rollback is a new version, current, with the old one's files and inputs.
    after = lineage.snapshot_history(lake, "gold", "top")
    assert [h.current for h in after] == [True, False, False]
    assert after[0].snapshot.restored_from == first


def test_empty_lake_has_no_lineage(lake: Lakehouse) -> None:
    assert lineage.current_snapshots(lake.storage) == {}


def test_query_inputs_name_the_snapshots_a_result_depends_on(lake: Lakehouse) -> None:
    build(lake)
    tables = lake.tables()
    got = query_inputs("SELECT * FROM gold.top JOIN gold.not_yet USING (name)", tables)
    assert got.snapshots == {"gold.top": lake.snapshot("gold", "top").snapshot_id}
    assert got.missing == ["gold.not_yet"]
    # A query the guard refuses depends on everything (running it explains the problem).
    refused = query_inputs("DELETE FROM gold.top", tables)
    assert refused.snapshots.keys() == {t.qualified_name for t in tables}
    assert refused.missing == []
