"""Silver: union by name, trim, blanks → NULL, dates parsed, duplicates dropped, checks."""

import io

import pytest

from lakehouse import ConfigError, Lakehouse
from lakehouse.transform import silver
from lakehouse.transform.silver import DatasetOptions


def ingest(lake: Lakehouse, dataset: str, text: str, name: str = "f.csv") -> None:
    lake.ingest(io.BytesIO(text.encode()), dataset=dataset, filename=name)


def test_cleans_types_and_deduplicates(lake: Lakehouse) -> None:
    ingest(
        lake,
        "people",
        "id,name,joined,seen_at,city\n"
        "1, Alice ,2025-03-14,2025-03-14 10:00:00,Paris\n"
        "2,Bob,03/15/2025,2025-03-15 11:00:00,\n"
        "2,Bob,03/15/2025,2025-03-15 11:00:00,\n"
        "3,  ,14 Mar 2025,2025-03-16 12:00:00,  \n"
        "1,Alice,2025-03-14,2025-03-14 10:00:00,Paris\n",
    )
    ingest(lake, "people", "id,name,extra\n4,Dan,x\n", "g.csv")
    r = lake.build_silver("people", run_id="run-1")
    assert (r.input_rows, r.rows, r.duplicates_dropped, r.batches) == (6, 4, 2, 2)
    assert dict(r.snapshot.schema) == {
        "id": "BIGINT",
        "name": "VARCHAR",
        "joined": "DATE",
        "seen_at": "TIMESTAMP",
        "city": "VARCHAR",
        "extra": "VARCHAR",
    }
    assert r.parsed == {"joined": "DATE %m/%d/%Y"}
    assert r.snapshot.run_id == "run-1"
    rows = lake.sql("SELECT * FROM silver.people ORDER BY id").to_pylist()
    assert [row["name"] for row in rows] == ["Alice", "Bob", None, "Dan"]
    assert [str(row["joined"]) for row in rows] == [
        "2025-03-14",
        "2025-03-15",
        "2025-03-14",
        "None",
    ]
    assert [row["city"] for row in rows] == ["Paris", None, None, None]
    assert r.null_share["city"] == 0.75 and r.null_share["id"] == 0.0
    assert not r.drift.changed  # first snapshot: nothing to drift from


def test_day_first_dates_and_text_that_only_looks_like_dates(lake: Lakehouse) -> None:
    # Mixed layouts keep the bronze column text; silver then reads every value as a date.
    ingest(lake, "d", "eu,mixed\n31/12/2024,2024-01-01\n2025-02-01,not a date\n")
    r = lake.build_silver("d")
    assert r.parsed == {"eu": "DATE %d/%m/%Y"}
    assert dict(r.snapshot.schema)["mixed"] == "VARCHAR"
    assert [str(v) for v in lake.sql("SELECT eu FROM silver.d ORDER BY eu").column(0)] == [
        "2024-12-31",
        "2025-02-01",
    ]


def test_schema_drift_against_previous_snapshot(lake: Lakehouse) -> None:
    ingest(lake, "t", "a,b\n1,x\n")
    lake.build_silver("t")
    lake.ingest(io.BytesIO(b"a,c\n2,y\n"), dataset="t", filename="t.csv", mode="replace")
    r = lake.build_silver("t")
    assert (r.drift.added, r.drift.removed) == (["c"], ["b"])


def test_key_checks(lake: Lakehouse) -> None:
    ingest(lake, "k", "id,v\n1,a\n1,b\n,c\n2,d\n")
    r = lake.build_silver("k", options=DatasetOptions(key=("id",)))
    assert r.key_check is not None and r.not_null_check is not None
    assert not r.key_check.passed and r.key_check.failures == 1
    assert r.key_check.sample == ["1 ×2"]
    assert not r.not_null_check.passed and r.not_null_check.failures == 1
    with pytest.raises(ConfigError, match="nope"):
        lake.build_silver("k", options=DatasetOptions(key=("nope",)))


def test_datasets_file(tmp_path) -> None:
    f = tmp_path / "datasets.toml"
    f.write_text(
        '[datasets.orders]\nkey = "order_id"\ndescription = "Orders"\n'
        '[datasets.lines]\nkey = ["order_id", "line_no"]\n'
    )
    opts = silver.load_options(f)
    assert opts["orders"] == DatasetOptions(("order_id",), "Orders")
    assert opts["lines"].key == ("order_id", "line_no")
    assert silver.load_options(tmp_path / "missing.toml") == {}
    f.write_text("[datasets.x]\nkey = 3\n")
    with pytest.raises(ConfigError, match="key"):
        silver.load_options(f)
    f.write_text("not toml [")
    with pytest.raises(ConfigError):
        silver.load_options(f)


def test_datasets_file_is_read_from_settings(lake: Lakehouse, tmp_path) -> None:
    (tmp_path / "ds.toml").write_text('[datasets.k]\nkey = "id"\n')
    lake = Lakehouse(lake.settings.replace(datasets_file=tmp_path / "ds.toml"), lake.storage)
    ingest(lake, "k", "id,v\n1,a\n2,b\n")
    r = lake.build_silver("k")
    assert r.key == ("id",) and r.key_check is not None and r.key_check.passed


def test_dates_after_a_blank_start_are_still_found(lake: Lakehouse) -> None:
    """The first rows only rule columns out; a column empty there is checked in full."""
    rows = "".join(f"{i},\n" for i in range(1_500))
    ingest(lake, "late", "id,seen\n" + rows + "1500,2025-01-02\n1501,03/04/2025\n")
    r = lake.build_silver("late")
    assert r.parsed == {"seen": "DATE %m/%d/%Y"}
