"""The sandbox's two lines: every escape is refused through the engine, and the locked DuckDB
refuses file, URL, bucket and configuration access even when the guard is bypassed."""

import os
from collections.abc import Iterator

import duckdb
import pytest

from devtools.s3server import REGION, S3Server
from lakehouse import Lakehouse, QueryError, Settings
from lakehouse.query.sandbox import Sandbox
from tests.lakehouse.query.test_guard import REFUSED


@pytest.fixture(scope="module", params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def shared_lake(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Lakehouse]:
    """One lake and worker pool for the whole module: each escape case is one query."""
    tmp = tmp_path_factory.mktemp("sandbox")
    values: dict[str, object] = {"lake_root": tmp / "lake", "state_dir": tmp / "state"}
    buckets: list[str] = []
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        buckets = [
            f"sbx-{os.getpid()}-{layer}" for layer in ("bronze", "silver", "gold", "landing")
        ]
        server.create_buckets(buckets)
        values.update(
            storage="s3",
            s3_endpoint=server.endpoint,
            s3_access_key=server.admin_key,
            s3_secret_key=server.admin_secret,
            s3_region=REGION,
            s3_use_ssl=False,
            **{f"bucket_{b.rsplit('-', 1)[1]}": b for b in buckets},
        )
    lake = Lakehouse(Settings(**values))  # type: ignore[arg-type]
    lake.publish("gold", "sales", "SELECT range AS x FROM range(10)")
    yield lake
    lake.close()
    if buckets:
        request.getfixturevalue("s3_server").delete_buckets(buckets)


@pytest.mark.parametrize(("sql", "title"), REFUSED)
def test_escapes_are_refused_and_the_worker_serves_on(shared_lake, sql: str, title: str) -> None:
    with pytest.raises(QueryError) as err:
        shared_lake.query(sql)
    assert (err.value.title, bool(err.value.msg)) == (title, True)
    before = shared_lake.engine.worker_pids
    assert shared_lake.query("SELECT sum(x) AS s FROM gold.sales").table.to_pylist() == [{"s": 45}]
    assert not before or shared_lake.engine.worker_pids == before


# -- the second line: the locked connection itself, no guard in front --------------------------
def _refused(sandbox: Sandbox, sql: str) -> str:
    with pytest.raises(duckdb.Error) as err:
        sandbox.con.execute(sql).fetchall()
    return str(err.value)


def test_locked_connection_reads_only_the_lake(lake, tmp_path) -> None:
    lake.publish("gold", "t", "SELECT 42 AS v")
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\n1\n")
    sandbox = Sandbox(lake.settings)
    try:
        sandbox.refresh_views()
        assert sandbox.con.execute("SELECT v FROM gold.t").fetchall() == [(42,)]
        for sql in (
            f"SELECT * FROM read_csv('{outside}')",
            "SELECT * FROM read_text('/etc/passwd')",
            f"SELECT * FROM '{lake.settings.lake_root.resolve()}/../outside.csv'",
            "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
            "INSTALL httpfs",
        ):
            assert "Permission Error" in _refused(sandbox, sql)
        assert "locked" in _refused(sandbox, "SET enable_external_access = true")
        assert "locked" in _refused(sandbox, "SET allowed_directories = ['/']")
        # Python objects in the worker are not tables: no replacement scans.
        secret_rows = [1]  # noqa: F841 -- what a replacement scan would find
        assert "secret_rows" in _refused(sandbox, "SELECT * FROM secret_rows")
    finally:
        sandbox.close()


@pytest.mark.s3
def test_locked_connection_on_s3_cannot_reach_other_buckets_or_write(
    s3_server, s3_env, s3_buckets, tmp_path
) -> None:
    settings = Settings(state_dir=tmp_path / "state", **s3_env)
    lake = Lakehouse(settings)
    lake.publish("gold", "t", "SELECT 1 AS v")
    lake.publish("silver", "s", "SELECT 2 AS v")
    silver_key = lake.table("silver", "s").files[0].split("/", 1)[1]
    readonly = settings.replace(
        query_layers="gold",
        s3_query_access_key=s3_server.readonly_key,
        s3_query_secret_key=s3_server.readonly_secret,
    )
    sandbox = Sandbox(readonly)
    try:
        sandbox.refresh_views()
        assert sandbox.con.execute("SELECT v FROM gold.t").fetchall() == [(1,)]
        silver = s3_buckets["silver"]
        gold = s3_buckets["gold"]
        assert "Permission Error" in _refused(
            sandbox, f"SELECT * FROM read_parquet('s3://{silver}/{silver_key}')"
        )
        # `..` is not resolved by DuckDB; the server refuses the odd path.
        assert "HTTP" in _refused(
            sandbox, f"SELECT * FROM read_parquet('s3://{gold}/../{silver}/{silver_key}')"
        )
        # Even a write that got past the guard fails: the worker holds a read-only key.
        assert "403" in _refused(sandbox, f"COPY (SELECT 1) TO 's3://{gold}/evil.csv'")
        assert not any(o.key.endswith("evil.csv") for o in lake.storage.list_objects("gold/"))
    finally:
        sandbox.close()
