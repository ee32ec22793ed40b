"""Delta tables and the sandbox: does DuckDB's `delta` extension honour the lock?

It does not, entirely: with `allowed_directories` set and external access off, `delta_scan`
still reads a `_delta_log` outside the allowed folders (the table's schema and file names come
back), and only the Parquet reads are refused. So the untrusted side never loads the
extension: the trusted side resolves a version's files from the log (delta-rs) and the
sandbox's views are `read_parquet([...])` over exactly those files, as before.
"""

import io
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lakehouse import Lakehouse, QueryError, Settings, duck
from tests.support.isolation import no_developer_config  # noqa: F401 - a fixture
from tests.support.lakedirs import lake_dirs

pytestmark = pytest.mark.usefixtures("no_developer_config")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A Delta table on the host, outside the lake."""
    path = tmp_path / "private" / "salaries"
    write_deltalake(str(path), pa.table({"employee": ["ann"], "salary": [123_456]}))
    return path


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lakehouse]:
    with Lakehouse(Settings(**lake_dirs(tmp_path))) as lk:  # type: ignore[arg-type]
        lk.ingest(io.BytesIO(b"id,amount\n1,10\n2,20\n"), dataset="orders", filename="o.csv")
        lk.build_silver("orders")
        yield lk


def test_the_delta_extension_reads_logs_outside_the_lock(lake: Lakehouse, outside: Path) -> None:
    """Why the sandbox does not use `delta_scan`: the lock stops its data reads, not its log
    reads. If this starts failing, a DuckDB release made the extension honour the lock."""
    con = duckdb.connect()
    duck.load_extension(con, "delta")
    duck.lock(con, [str(lake.settings.lake_root.resolve()) + "/"])
    inside = lake.table_uri("silver", "orders")
    assert con.execute(f"SELECT count(*) FROM delta_scan('{inside}')").fetchone() == (2,)
    with pytest.raises(duckdb.PermissionException, match="file system operations are disabled"):
        con.execute(f"SELECT * FROM delta_scan('{outside}')").fetchall()
    # ...but the log was read: the outside table's schema leaks.
    described = con.execute(f"DESCRIBE SELECT * FROM delta_scan('{outside}')").fetchall()
    assert [c[0] for c in described] == ["employee", "salary"]


def test_the_sandbox_reads_delta_tables_through_file_lists(lake: Lakehouse, outside: Path) -> None:
    got = lake.query("SELECT sum(amount) AS total FROM silver.orders")
    assert got.table.to_pylist() == [{"total": 30}]
    for sql in (
        f"SELECT * FROM delta_scan('{outside}')",
        f"DESCRIBE SELECT * FROM delta_scan('{outside}')",
        f"SELECT * FROM read_parquet('{next(outside.glob('*.parquet'))}')",
        f"SELECT * FROM read_json('{outside}/_delta_log/00000000000000000000.json')",
    ):
        with pytest.raises(QueryError):
            lake.query(sql)
    # The views the workers get are plain Parquet scans of the current version's files.
    scan = lake.table("silver", "orders").scan_sql
    assert scan.startswith("read_parquet([") and "_delta_log" not in scan
