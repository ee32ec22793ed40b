"""`ratatouille migrate`: snapshot tables from before Delta become Delta tables, nothing lost."""

import json
import tempfile
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from lakehouse import Lakehouse
from lakehouse.cli.main import main
from lakehouse.layers import Layer
from lakehouse.tables import migrate


def legacy_snapshot(
    lake: Lakehouse, layer: str, table: str, sid: str, sql: str, created: str, **extra: object
) -> dict[str, object]:
    """Write one snapshot the way the snapshot-folder layout did: parts, then `_snapshot.json`."""
    folder = f"{layer}/{table}/snapshot={sid}/"
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect()
        con.execute(
            f"COPY ({sql}) TO '{tmp}/out' "
            "(FORMAT parquet, FILE_SIZE_BYTES '1KB', FILENAME_PATTERN 'part-{i}')"
        )
        parts = sorted(Path(tmp, "out").glob("*.parquet"))
        rows = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]  # type: ignore[index]
        schema = [(c[0], c[1]) for c in con.execute(f"DESCRIBE {sql}").fetchall()]
        con.close()
        files = []
        size = sum(p.stat().st_size for p in parts)
        for p in parts:
            lake.storage.put_file(folder + p.name, p)
            files.append(folder + p.name)
    snap = {
        "layer": layer,
        "table": table,
        "snapshot_id": sid,
        "files": files,
        "rows": rows,
        "size_bytes": size,
        "schema": schema,
        "created_at": created,
        "run_id": f"run-{sid}",
        "restored_from": None,
        "format_version": 1,
        "inputs": None,
        **extra,
    }
    lake.storage.put_bytes(folder + "_snapshot.json", json.dumps(snap).encode())
    return snap


def point(lake: Lakehouse, snap: dict[str, object]) -> None:
    lake.storage.put_bytes(
        f"{snap['layer']}/{snap['table']}/_current.json", json.dumps(snap).encode()
    )


def test_snapshots_become_versions(lake: Lakehouse) -> None:
    def orders(day: int, sql: str) -> dict[str, object]:
        sid, created = (
            f"2024010{day}T000000000000Z-{day}{day}{day}",
            f"2024-01-0{day}T00:00:00+00:00",
        )
        return legacy_snapshot(lake, "silver", "orders", sid, sql, created)

    a = orders(1, "SELECT range AS id, 'a' AS tag FROM range(300)")
    b = orders(2, "SELECT range AS id, 'b' AS tag, 1.5 AS price FROM range(200)")
    c = orders(3, "SELECT range AS id, 'c' AS tag FROM range(100)")
    # Rolled back to b on the 4th: the current snapshot is not the newest one.
    point(lake, {**b, "restored_from": b["snapshot_id"], "created_at": "2024-01-04T00:00:00+00:00"})
    # A crashed publish left a folder with parts and no manifest.
    lake.storage.put_bytes(
        "silver/orders/snapshot=20240104T000000000000Z-dddddd/part-0.parquet", b"PAR1"
    )
    odd = legacy_snapshot(
        lake, "gold", "odd", "20240105T000000000000Z-eeeeee",
        "SELECT uuid() AS id, TIME '01:02:03' AS t, 7::UTINYINT AS u",
        "2024-01-05T00:00:00+00:00", inputs={"silver.orders": b["snapshot_id"]},
    )  # fmt: skip
    point(lake, odd)
    assert lake.tables() == []  # not Delta yet: invisible, never half-read

    done = {m.table: m for m in migrate.migrate(lake.settings, lake.storage)}
    assert (done["silver.orders"].versions, done["silver.orders"].error) == (3, None)
    assert (done["gold.odd"].versions, done["gold.odd"].rewritten) == (1, 1)

    hist = lake.history("silver", "orders")
    # Oldest kept first, the current one last, whatever its age.
    assert [s.created_at for s in hist] == [
        "2024-01-04T00:00:00+00:00",
        c["created_at"],
        a["created_at"],
    ]
    assert hist[0].restored_from == b["snapshot_id"]
    assert [s.run_id for s in hist] == [
        "run-" + str(b["snapshot_id"]),
        "run-" + str(c["snapshot_id"]),
        "run-" + str(a["snapshot_id"]),
    ]
    info = lake.table("silver", "orders")
    assert (info.rows, [n for n, _ in info.columns]) == (200, ["id", "tag", "price"])
    assert set(lake.read("silver", "orders").column("tag").to_pylist()) == {"b"}
    assert lake.read("silver", "orders", as_of=hist[2].snapshot_id).num_rows == 300
    assert lake.read("silver", "orders", as_of="2024-01-03T12:00:00+00:00").num_rows == 100
    # Files are referenced where they are: no copy of the data.
    assert lake.snapshot("silver", "orders").files == b["files"]
    gold = lake.table("gold", "odd")
    assert dict(gold.columns) == {"id": "VARCHAR", "t": "VARCHAR", "u": "SMALLINT"}
    assert lake.snapshot("gold", "odd").inputs == {"silver.orders": b["snapshot_id"]}
    assert lake.sql("SELECT t FROM gold.odd").to_pylist() == [{"t": "01:02:03"}]
    assert not lake.storage.exists("silver/orders/_current.json")

    # Idempotent: nothing left to do, nothing changes.
    assert migrate.migrate(lake.settings, lake.storage) == []
    assert len(lake.history("silver", "orders")) == 3


def gold_g(lake: Lakehouse, day: int) -> dict[str, object]:
    """Snapshot `day` of a one-row `gold.g` (x = day), made on that day of January 2024."""
    sid, created = f"2024010{day}T000000000000Z-{day:06d}", f"2024-01-0{day}T00:00:00+00:00"
    return legacy_snapshot(lake, "gold", "g", sid, f"SELECT {day} AS x", created)


def test_a_migration_stopped_part_way_is_finished(lake: Lakehouse) -> None:
    a, b = gold_g(lake, 1), gold_g(lake, 2)
    point(lake, b)
    # The first version went in, then the run died (pointer still there).
    migrate._commit(lake.settings, lake.storage, lake.connect_duckdb(), Layer.GOLD, "g", a)
    [m] = migrate.migrate(lake.settings, lake.storage)
    assert m.versions == 1
    assert [s.run_id for s in lake.history("gold", "g")] == [
        f"run-{b['snapshot_id']}",
        f"run-{a['snapshot_id']}",
    ]
    assert lake.sql("SELECT x FROM gold.g").to_pylist() == [{"x": 2}]


def test_cli(lake: Lakehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    # (On S3 the s3_env fixture exported the server's settings already.)
    monkeypatch.setenv("RATATOUILLE_LAKE_ROOT", str(lake.settings.lake_root))
    monkeypatch.setenv("RATATOUILLE_STATE_DIR", str(lake.settings.state_dir))
    point(lake, gold_g(lake, 1))
    out = CliRunner().invoke(main, ["migrate"])
    assert out.exit_code == 0, out.output
    assert "gold.g → Delta (1 versions)" in out.output
    again = CliRunner().invoke(main, ["migrate", "--json"])
    assert json.loads(again.output) == {"ok": True, "tables": []}
