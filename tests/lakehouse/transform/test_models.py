"""Gold SQL models: header parsing, validation, dependencies, build + checks, save."""

import io
import json

import pytest

from lakehouse import ConfigError, Lakehouse, QueryError, Settings, TableNotFoundError
from lakehouse.query.inputs import inputs_of
from lakehouse.transform import models
from lakehouse.transform.checks import DataCheck

REVENUE = """-- description: Revenue per customer.
-- key: customer_id
-- check: min_rows(1)
-- a note that is not a header
SELECT customer_id, sum(amount) AS revenue
FROM silver.orders
GROUP BY customer_id;  -- trailing comment
"""


def test_parse_header_and_deps() -> None:
    m = models.parse("revenue", REVENUE)
    assert m.description == "Revenue per customer."
    assert m.key == ("customer_id",)
    assert m.deps == (("silver", "orders"),)
    assert [c.name for c in m.all_checks] == [
        "min_rows(1)",
        "unique(customer_id)",
        "not_null(customer_id)",
    ]
    assert m.select.rstrip().endswith("GROUP BY customer_id")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SELECT 1; SELECT 2", "one statement"),
        ("COPY (SELECT 1) TO 'x.csv'", "not COPY"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM orders", "bronze.<table>"),
        ("SELECT * FROM gold.revenue", "its own table"),
        ("EXPLAIN SELECT 1", "not an EXPLAIN"),
        ("-- check: looks_fine(a)\nSELECT 1", "Unknown check"),
        ("-- check: min_rows(x)\nSELECT 1", "Unknown check"),
        ("-- schedule: every day\nSELECT 1", "cron"),
        ("-- schedule: 61 * * * *\nSELECT 1", "cron"),
        ("-- schedule: * * * * foo\nSELECT 1", "cron"),
        ("-- schedule: 0 0 31 2 *\nSELECT 1", "cron"),
        ("-- schedule: * * * * * *\nSELECT 1", "cron"),
    ],
)
def test_invalid_models_are_refused(text: str, reason: str) -> None:
    """A model may only read the lake, in one SELECT, with checks and schedule we understand."""
    with pytest.raises(ConfigError, match=reason):
        models.parse("revenue", text)


def test_invalid_name() -> None:
    with pytest.raises(Exception, match="not allowed"):
        models.parse("Bad-Name", "SELECT 1")


def test_load_separates_good_and_bad(tmp_path) -> None:
    (tmp_path / "good.sql").write_text("SELECT * FROM silver.a")
    (tmp_path / "bad.sql").write_text("DROP TABLE silver.a")
    (tmp_path / "notes.txt").write_text("ignored")
    found, errors = models.load(tmp_path)
    assert [m.name for m in found] == ["good"]
    assert list(errors) == ["bad.sql"]
    assert models.load(tmp_path / "missing") == ([], {})


def test_valid_schedules_parse() -> None:
    for cron in ("0 6 * * *", "*/15 8-18 * * MON-FRI", "0 0 1 1 *"):
        assert models.parse("m", f"-- schedule: {cron}\nSELECT 1").schedule == cron


def test_save_validates_and_writes_atomically(tmp_path) -> None:
    settings = Settings(lake_root=tmp_path / "lake", models_dir=tmp_path / "models")
    folder = settings.models_dir
    m = models.save(settings, "top", "SELECT * FROM gold.x;", description="Top rows")
    assert (folder / "top.sql").read_text().startswith("-- description: Top rows\n")
    assert m.deps == (("gold", "x"),)
    with pytest.raises(ConfigError, match="already exists"):
        models.save(settings, "top", "SELECT 1")
    models.save(settings, "top", "SELECT 2", overwrite=True)
    with pytest.raises(ConfigError):
        models.save(settings, "other", "DELETE FROM gold.x")
    with pytest.raises(ConfigError, match="gold/daily"):
        models.save(settings, "daily", "SELECT 1", taken=["daily"])
    assert sorted(p.name for p in folder.iterdir()) == ["top.sql"]


def test_save_refuses_names_other_assets_make(lake: Lakehouse) -> None:
    """Notebook steps and gold tables no model file builds own their names."""
    s = lake.settings.replace(
        models_dir=lake.settings.lake_root.parent / "models",
        notebook_steps_dir=lake.settings.lake_root.parent / "steps",
    )
    s.notebook_steps_dir.mkdir()
    meta = {"metadata": {"ratatouille": {"publishes": "perf"}}}
    (s.notebook_steps_dir / "performance.ipynb").write_text(json.dumps(meta))
    lake.publish("gold", "by_hand", "SELECT 1 AS x")
    for name, holder in [("perf", "performance.ipynb"), ("by_hand", "no model file")]:
        with pytest.raises(ConfigError, match=holder):
            models.save(s, name, "SELECT 1", storage=lake.storage)
    models.save(s, "mine", "SELECT 1", storage=lake.storage)
    lake.publish("gold", "mine", "SELECT 1 AS x")  # built from its file: it may be replaced
    models.save(s, "mine", "SELECT 2", storage=lake.storage, overwrite=True)


def test_query_layers_limit_what_models_read(lake: Lakehouse) -> None:
    """RATATOUILLE_QUERY_LAYERS binds models as it binds the playground."""
    with pytest.raises(ConfigError, match="bronze"):
        models.parse("m", "SELECT * FROM bronze.orders", layers=("silver", "gold"))
    _orders(lake, "customer_id,amount\n1,10\n")
    narrow = Lakehouse(lake.settings.replace(query_layers="silver,gold"), lake.storage)
    with pytest.raises(ConfigError, match="bronze"):
        narrow.build_model(models.parse("m", "SELECT * FROM bronze.orders"))
    with pytest.raises(TableNotFoundError):
        lake.snapshot("gold", "m")


def _orders(lake: Lakehouse, rows: str) -> None:
    lake.ingest(io.BytesIO(rows.encode()), dataset="orders", filename="o.csv", mode="replace")
    lake.build_silver("orders")


def test_build_publishes_and_checks(lake: Lakehouse) -> None:
    _orders(lake, "customer_id,amount\n1,10\n1,5\n2,7\n")
    result = lake.build_model(models.parse("revenue", REVENUE), run_id="r1")
    assert result.snapshot.rows == 2 and result.snapshot.run_id == "r1"
    assert all(c.passed for c in result.checks)
    got = lake.sql("SELECT * FROM gold.revenue ORDER BY customer_id").to_pylist()
    assert got == [{"customer_id": 1, "revenue": 15}, {"customer_id": 2, "revenue": 7}]


def test_failing_checks_are_reported(lake: Lakehouse) -> None:
    _orders(lake, "customer_id,amount\n1,10\n,5\n")
    m = models.parse("dupes", "-- key: customer_id\nSELECT customer_id FROM silver.orders")
    _orders(lake, "customer_id,amount\n1,10\n1,11\n,5\n")
    outcomes = {c.name: c for c in lake.build_model(m).checks}
    assert not outcomes["unique(customer_id)"].passed
    assert not outcomes["not_null(customer_id)"].passed
    assert outcomes["not_null(customer_id)"].failures == 1


def test_failing_model_keeps_the_previous_snapshot(lake: Lakehouse) -> None:
    _orders(lake, "customer_id,amount\n1,10\n")
    good = lake.build_model(models.parse("revenue", REVENUE))
    broken = models.parse(
        "revenue", "SELECT customer_id, 1 / 0 AS x, error('boom') FROM silver.orders"
    )
    with pytest.raises(QueryError, match="boom") as e:
        lake.build_model(broken)
    assert e.value.title == "Could not build gold.revenue"
    assert lake.snapshot("gold", "revenue").snapshot_id == good.snapshot.snapshot_id
    missing = models.parse("other", "SELECT * FROM silver.nope")
    with pytest.raises(QueryError):
        lake.build_model(missing)
    with pytest.raises(TableNotFoundError):
        lake.snapshot("gold", "other")


def test_check_specs() -> None:
    assert DataCheck.parse(" unique( a , b ) ") == DataCheck("unique", ("a", "b"))
    assert DataCheck.parse("min_rows(10)").name == "min_rows(10)"


def test_snapshots_record_the_inputs_they_were_built_from(lake: Lakehouse) -> None:
    _orders(lake, "customer_id,amount\n1,10\n")
    silver_id = lake.snapshot("silver", "orders").snapshot_id
    built = lake.build_model(models.parse("revenue", REVENUE)).snapshot
    assert built.inputs == {"silver.orders": silver_id}
    assert lake.snapshot("gold", "revenue").inputs == {"silver.orders": silver_id}
    bronze_batch = lake.table("bronze", "orders").snapshot_id
    snap = lake.publish(
        "gold", "t", "SELECT * FROM gold.revenue JOIN bronze.orders USING (customer_id)"
    )
    assert snap.inputs == {"gold.revenue": built.snapshot_id, "bronze.orders": bronze_batch}
    assert lake.publish("gold", "u", "SELECT * FROM range(3)").inputs == {}
    assert inputs_of("SELECT * FROM read_csv('x.csv')", lake.tables()) is None  # not only tables
