"""The catalog answers from manifests and pointers: layers, columns, rows, sizes, producers."""

import pyarrow as pa

from lakehouse import Lakehouse


def test_catalog_lists_all_layers(lake: Lakehouse, tmp_path) -> None:
    src = tmp_path / "Customer List.csv"
    src.write_text("id,name\n1,Ann\n2,Bo\n")
    lake.ingest(src)
    src.write_text("id,name,vip\n3,Cy,true\n")
    lake.ingest(src)
    lake.publish("silver", "customer_list", "SELECT * FROM bronze.customer_list", run_id="r-1")
    lake.publish("gold", "vips", pa.table({"id": [3]}), run_id="r-2")

    tables = {t.qualified_name: t for t in lake.tables()}
    assert list(tables) == ["bronze.customer_list", "silver.customer_list", "gold.vips"]
    bronze = tables["bronze.customer_list"]
    assert (bronze.rows, bronze.batches) == (3, 2)
    assert bronze.columns == [("id", "BIGINT"), ("name", "VARCHAR"), ("vip", "BOOLEAN")]
    silver = tables["silver.customer_list"]
    assert (silver.rows, silver.run_id, len(silver.columns)) == (3, "r-1", 3)
    assert silver.size_bytes > 0 and silver.updated_at
    assert [t.name for t in lake.tables("gold")] == ["vips"]


def test_catalog_ignores_uncommitted_folders(lake: Lakehouse) -> None:
    lake.storage.put_bytes("bronze/half/batch=1/data.parquet", b"PAR1")
    lake.storage.put_bytes("gold/half/data-1/part-0.parquet", b"PAR1")
    lake.storage.put_bytes("gold/half/_delta_log/_commits/x.json.tmp", b"{")
    assert lake.tables() == []
