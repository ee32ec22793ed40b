"""Untrusted SQL through real worker processes, on both backends: results, limits, failures."""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import lakehouse.query.engine
import lakehouse.query.process
from lakehouse import Lakehouse, QueryError, Settings
from lakehouse.query.limits import memory_ceiling_mb


def make_lake(settings: Settings, **overrides: object) -> Lakehouse:
    lake = Lakehouse(settings.replace(**overrides))
    lake.publish("gold", "sales", "SELECT range AS id, range % 3 AS region FROM range(25000)")
    return lake


@pytest.fixture
def qlake(settings: Settings):
    lake = make_lake(settings)
    yield lake
    lake.close()


def test_results_are_arrow_with_types_time_and_an_honest_cap(qlake) -> None:
    r = qlake.query("SELECT region, count(*) AS n FROM gold.sales GROUP BY 1 ORDER BY 1")
    assert r.table.to_pylist() == [{"region": i, "n": 8334 - (i > 0)} for i in range(3)]
    assert r.columns == [("region", "BIGINT"), ("n", "BIGINT")]
    assert not r.truncated and r.elapsed_s > 0

    full = qlake.query("SELECT id FROM gold.sales ORDER BY id")
    assert (full.rows, full.truncated, full.row_cap) == (10_000, True, 10_000)
    assert full.table.column("id").to_pylist() == list(range(10_000))
    exact = qlake.query("SELECT id FROM gold.sales LIMIT 7", max_rows=7)
    assert (exact.rows, exact.truncated) == (7, False)
    assert qlake.query("SELECT * FROM gold.sales", max_rows=3).rows == 3


def test_explain_of_a_select_runs(qlake) -> None:
    r = qlake.query("EXPLAIN SELECT region FROM gold.sales WHERE id > 5")
    assert "READ_PARQUET" in str(r.table.to_pylist()).upper()


def test_views_follow_new_snapshots_and_tables(qlake, tmp_path) -> None:
    assert qlake.query("SELECT count(*) AS n FROM gold.sales").table.to_pylist() == [{"n": 25000}]
    qlake.publish("gold", "sales", "SELECT 1 AS id, 1 AS region")
    assert qlake.query("SELECT count(*) AS n FROM gold.sales").table.to_pylist() == [{"n": 1}]
    (tmp_path / "new.csv").write_text("a\n1\n2\n")
    qlake.ingest(tmp_path / "new.csv")
    assert qlake.query("SELECT sum(a) AS s FROM bronze.new").table.to_pylist() == [{"s": 3}]


def test_unknown_tables_get_a_clear_error(qlake) -> None:
    with pytest.raises(QueryError) as err:
        qlake.query("SELECT * FROM gold.salez")
    assert err.value.title == "Unknown table or column"
    assert "salez" in err.value.msg and "sales" in err.value.msg


def test_an_unqualified_table_gets_a_hint(qlake) -> None:
    with pytest.raises(QueryError) as err:
        qlake.query("SELECT * FROM Sales")
    assert err.value.title == "Table not allowed"
    assert err.value.msg.endswith("Did you mean gold.sales?")


@pytest.mark.parametrize("layers", ["gold", "gold,silver"])
def test_only_the_configured_layers_are_readable(settings, tmp_path, layers) -> None:
    (tmp_path / "raw.csv").write_text("a\n1\n")
    with make_lake(settings, query_layers=layers) as lake:
        lake.ingest(tmp_path / "raw.csv")
        assert lake.query("SELECT count(*) AS n FROM gold.sales").table.to_pylist() == [
            {"n": 25000}
        ]
        with pytest.raises(QueryError, match="not a table of the lake"):
            lake.query("SELECT * FROM bronze.raw")


def test_the_time_limit_interrupts_and_the_worker_serves_on(qlake) -> None:
    qlake.query("SELECT 1")
    [pid] = qlake.engine.worker_pids
    start = time.monotonic()
    with pytest.raises(QueryError) as err:
        qlake.query("SELECT sum(range) FROM range(1e11::BIGINT)", time_limit_s=1)
    assert err.value.title == "Time limit reached"
    assert time.monotonic() - start < 1 + lakehouse.query.process.KILL_GRACE_S
    assert qlake.query("SELECT 2 AS x").table.to_pylist() == [{"x": 2}]
    assert qlake.engine.worker_pids == [pid]  # interrupted, not killed


def test_a_worker_that_ignores_the_limit_is_killed_and_replaced(qlake, monkeypatch) -> None:
    monkeypatch.setattr(lakehouse.query.engine, "KILL_GRACE_S", 0.5)
    qlake.query("SELECT 1")
    [pid] = qlake.engine.worker_pids
    os.kill(pid, signal.SIGSTOP)  # frozen: it cannot even interrupt its own query
    with pytest.raises(QueryError) as err:
        qlake.query("SELECT 1", time_limit_s=0.5)
    assert err.value.title == "Time limit reached"
    assert "replaced" in err.value.msg
    assert qlake.query("SELECT 3 AS x").table.to_pylist() == [{"x": 3}]
    assert qlake.engine.worker_pids != [pid]


def test_a_worker_killed_mid_query_is_replaced(qlake) -> None:
    qlake.query("SELECT 1")
    [pid] = qlake.engine.worker_pids
    threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(QueryError) as err:
        qlake.query("SELECT sum(range) FROM range(1e11::BIGINT)")
    assert err.value.title == "Query worker stopped"
    assert "SIGKILL" in err.value.msg
    assert qlake.query("SELECT 4 AS x").table.to_pylist() == [{"x": 4}]
    assert pid not in qlake.engine.worker_pids


def test_memory_hungry_queries_spill_or_fail_cleanly(settings) -> None:
    with make_lake(settings, query_memory_limit="64MB", query_temp_limit="1GB") as lake:
        # A hash aggregate of 4M groups spills to disk and finishes.
        r = lake.query(
            "SELECT count(*) AS n FROM (SELECT range % 4000000 AS k, count(*) "
            "FROM range(8000000) GROUP BY k)"
        )
        assert r.table.to_pylist() == [{"n": 4_000_000}]
        # One list of 20M strings cannot spill: it fails, with advice, and nothing else breaks.
        with pytest.raises(QueryError) as err:
            lake.query("SELECT list(range::VARCHAR) FROM range(20000000)")
        assert err.value.title == "Out of memory"
        assert "RATATOUILLE_QUERY_MEMORY_LIMIT" in err.value.msg
        assert lake.query("SELECT count(*) AS n FROM gold.sales").table.to_pylist() == [
            {"n": 25000}
        ]


def test_eight_concurrent_queries_share_the_pool(qlake) -> None:
    def one(i: int) -> list[dict[str, int]]:
        sql = f"SELECT {i} AS i, count(*) AS n FROM gold.sales WHERE id % 8 = {i}"
        return list(qlake.query(sql).table.to_pylist())

    pids: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            pids.update(qlake.engine.worker_pids)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    stop.set()
    watcher.join()
    assert results == [[{"i": i, "n": 3125}] for i in range(8)]
    assert 1 <= len(pids) <= qlake.settings.query_workers


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_streams_every_row_to_a_file(qlake, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"all.{fmt}"
    r = qlake.export("SELECT id, [id] AS l FROM gold.sales ORDER BY id", out)
    assert (r.rows, r.format, r.bytes) == (25000, fmt, out.stat().st_size)
    if fmt == "parquet":
        assert pq.read_table(out).column("id").to_pylist() == list(range(25000))
    else:
        lines = out.read_text().splitlines()
        assert lines[:2] == ['"id","l"', '0,"[0]"'] and len(lines) == 25001


def test_a_failed_export_leaves_no_file(qlake, tmp_path: Path) -> None:
    out = tmp_path / "x" / "big.csv"
    out.parent.mkdir()
    with pytest.raises(QueryError) as err:
        qlake.engine.export("SELECT range FROM range(1e11::BIGINT)", out, time_limit_s=1)
    assert err.value.title == "Time limit reached"
    assert list(out.parent.iterdir()) == []
    with pytest.raises(QueryError, match="not a folder"):
        qlake.export("SELECT 1", tmp_path / "missing" / "x.csv")


@pytest.mark.s3
def test_s3_queries_use_the_read_only_key(s3_server, s3_env, tmp_path) -> None:
    base = Settings(state_dir=tmp_path / "state", **s3_env)
    with make_lake(
        base,
        s3_query_access_key=s3_server.readonly_key,
        s3_query_secret_key=s3_server.readonly_secret,
    ) as lake:
        assert lake.query("SELECT count(*) AS n FROM gold.sales").table.to_pylist() == [
            {"n": 25000}
        ]
        assert lake.engine.settings.s3_access_key == s3_server.admin_key  # ours, untouched


def test_closing_stops_the_workers(settings) -> None:
    lake = make_lake(settings, query_workers=2)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: lake.query("SELECT count(*) FROM gold.sales"), range(4)))
    pids = lake.engine.worker_pids
    assert pids
    lake.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize(
    ("overrides", "ceiling"),
    [
        ({}, 2 * 2_000_000_000 // 2**20 + 512),  # the default 2GB limit: about 4.3 GiB
        ({"query_memory_limit": "1GiB"}, 2048 + 512),
        ({"query_memory_limit": "512 MB"}, 2 * 512_000_000 // 2**20 + 512),
        ({"query_memory_limit": "1GiB", "query_worker_max_mb": 900}, 900),  # the setting wins
    ],
)
def test_the_worker_ceiling_follows_the_memory_limit(tmp_path, overrides, ceiling) -> None:
    """DuckDB's limit syntaxes (decimal and binary units, spaces) all give a ceiling above it."""
    assert memory_ceiling_mb(Settings(state_dir=tmp_path, **overrides)) == ceiling
