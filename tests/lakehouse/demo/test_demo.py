"""The demo dataset: deterministic, retail-shaped, dirty the way silver expects, seeded once."""

import csv
import json
import re
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakehouse import Lakehouse, Settings
from lakehouse.cli.main import main
from lakehouse.demo import ANCHOR, DATASETS, START, generate, seed

ISO, US, DAY_MON = r"\d{4}-\d{2}-\d{2}", r"\d{2}/\d{2}/\d{4}", r"\d{2} [A-Z][a-z]{2} \d{4}"
FORMATS = {ISO: "%Y-%m-%d", US: "%m/%d/%Y", DAY_MON: "%d %b %Y"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {p.stem: p for p in generate(tmp_path_factory.mktemp("demo"))}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def parse_date(text: str) -> tuple[str, date]:
    """(the format's pattern, the date) for one of the three formats silver parses."""
    for pattern, fmt in FORMATS.items():
        if re.fullmatch(pattern, text):
            return pattern, datetime.strptime(text, fmt).date()
    raise AssertionError(f"not a date in a known format: {text!r}")


def test_same_seed_same_bytes_other_seed_other_data(files, tmp_path) -> None:
    again = generate(tmp_path / "again")
    assert [p.name for p in again] == [f"{n}.csv" for n in DATASETS]
    for p in again:
        assert p.read_bytes() == files[p.stem].read_bytes(), p.name
    other = generate(tmp_path / "other", seed=8, scale=0.1)
    assert other[2].read_bytes() != files["orders"].read_bytes()
    assert 1_800 < len(rows(other[2])) < 2_300  # scale shrinks it


def test_schemas_and_row_counts(files) -> None:
    headers = {n: list(rows(p)[0]) for n, p in files.items()}
    assert headers == {
        "customers": ["customer_id", "name", "email", "country", "city", "signup_date", "segment"],
        "products": ["product_id", "name", "category", "unit_price"],
        "orders": ["order_id", "customer_id", "order_date", "status", "channel"],
        "order_lines": ["order_id", "line_no", "product_id", "quantity", "unit_price", "discount"],
    }
    counts = {n: len(rows(p)) for n, p in files.items()}
    assert 1_900 < counts["customers"] < 2_100
    assert counts["products"] == 150
    assert 19_000 < counts["orders"] < 21_000
    assert 55_000 < counts["order_lines"] < 65_000


def test_values_are_plausible(files) -> None:
    orders, lines = rows(files["orders"]), rows(files["order_lines"])
    status = Counter(o["status"].strip() for o in orders)
    assert set(status) == {"completed", "cancelled", "returned"}
    assert status["completed"] > 0.85 * len(orders)
    assert {o["channel"].strip() for o in orders} == {"web", "store", "app", ""}
    assert {c["segment"].strip() for c in rows(files["customers"])} == {
        "consumer",
        "business",
        "enterprise",
        "",
    }
    for line in lines:  # numeric columns stay numeric, so DuckDB types them as numbers
        for column in ("order_id", "line_no", "product_id", "quantity"):
            assert re.fullmatch(r"-?\d+", line[column]), line
        assert re.fullmatch(r"\d+\.\d{2}", line["unit_price"])
        assert line["discount"] == "" or 0 <= float(line["discount"]) <= 0.30
    for p in rows(files["products"]):
        assert re.fullmatch(r"\d+\.\d{2}", p["unit_price"])


def test_orders_span_two_years_with_a_holiday_peak(files) -> None:
    days = [parse_date(o["order_date"])[1] for o in rows(files["orders"])]
    assert min(days) >= START and max(days) <= ANCHOR
    per_month = Counter((d.year, d.month) for d in days)
    assert len(per_month) == 24
    assert per_month[(2025, 12)] > 2 * per_month[(2026, 2)]
    assert per_month[(2025, 11)] > 1.5 * per_month[(2025, 9)]


def test_exact_and_whitespace_duplicates(files) -> None:
    """Exact copies, and copies that match once text is trimmed (silver drops both)."""
    for name, exact, padded in [
        ("customers", 3, 2),
        ("orders", 150, 30),
        ("order_lines", 450, 0),
        ("products", 0, 0),
    ]:
        raw = [tuple(r.values()) for r in rows(files[name])]
        trimmed = [tuple(v.strip() for v in r) for r in raw]
        assert len(raw) - len(set(raw)) >= exact, name
        assert len(set(raw)) - len(set(trimmed)) >= padded, name
        if not exact:
            assert len(set(trimmed)) == len(raw), name


def test_blanks_in_optional_fields(files) -> None:
    customers, orders = rows(files["customers"]), rows(files["orders"])
    for values in (
        [c["city"] for c in customers],
        [c["segment"] for c in customers],
        [o["channel"] for o in orders],
    ):
        assert "" in values
        assert any(v and not v.strip() for v in values)  # whitespace only
    assert any(line["discount"] == "" for line in rows(files["order_lines"]))


def test_mixed_date_formats_only_the_three_silver_parses(files) -> None:
    for name, column in [("orders", "order_date"), ("customers", "signup_date")]:
        formats = Counter(parse_date(r[column])[0] for r in rows(files[name]))
        assert set(formats) == set(FORMATS), name
        assert formats[ISO] > 0.8 * sum(formats.values()), name


def test_categories_modestly_messy(files) -> None:
    categories = Counter(p["category"] for p in rows(files["products"]))
    assert {c.strip().title() for c in categories} == {
        "Kitchen",
        "Garden",
        "Toys",
        "Books",
        "Electronics",
        "Apparel",
    }
    messy = sum(n for c, n in categories.items() if c != c.strip().title())
    assert 1 <= messy <= 10


def test_bad_rows_break_rules_not_types(files) -> None:
    customer_ids = {c["customer_id"] for c in rows(files["customers"])}
    product_ids = {p["product_id"] for p in rows(files["products"])}
    orders, lines = rows(files["orders"]), rows(files["order_lines"])
    assert 1 <= sum(o["customer_id"] not in customer_ids for o in orders) <= 5
    assert 1 <= sum(line["product_id"] not in product_ids for line in lines) <= 5
    assert 1 <= sum(int(line["quantity"]) < 0 for line in lines) <= 5


@pytest.fixture
def lake(tmp_path) -> Lakehouse:
    """Local only: seeding is ingest four times, and ingest has its own S3 tests."""
    return Lakehouse(Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state"))


def test_seed_ingests_once_then_force_replaces(lake: Lakehouse) -> None:
    notes: list[str] = []
    results = seed(lake, progress=notes.append)
    assert [r.dataset for r in results] == list(DATASETS)
    assert notes[0].startswith("Generating") and len(notes) == 5
    assert lake.table("bronze", "orders").columns == [
        ("order_id", "BIGINT"),
        ("customer_id", "BIGINT"),
        ("order_date", "VARCHAR"),  # mixed formats: silver parses them
        ("status", "VARCHAR"),
        ("channel", "VARCHAR"),
    ]
    assert dict(lake.table("bronze", "order_lines").columns)["discount"] == "DOUBLE"
    orders = {r.dataset: r.rows for r in results}["orders"]
    assert lake.sql("SELECT count(*) AS n FROM bronze.orders").to_pylist() == [{"n": orders}]
    bad = lake.sql(
        "SELECT count(*) AS n FROM bronze.order_lines l "
        "ANTI JOIN bronze.products p USING (product_id)"
    )
    assert bad.to_pylist()[0]["n"] >= 1
    assert not list((lake.settings.state_dir / "demo").iterdir())

    assert seed(lake) == []
    again = seed(lake, force=True)
    assert [r.replaced_batches for r in again] == [1, 1, 1, 1]
    assert [t.batches for t in lake.tables("bronze")] == [1, 1, 1, 1]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {
        "RATATOUILLE_LAKE_ROOT": str(tmp_path / "lake"),
        "RATATOUILLE_STATE_DIR": str(tmp_path / "state"),
    }


def test_cli_demo_seeds_then_says_it_is_there(env) -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["demo", "--json"], env=env)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["ok"], out["seeded"]) == (True, True)
    assert [(d["dataset"], len(d["columns"])) for d in out["datasets"]] == [
        ("customers", 7),
        ("products", 4),
        ("orders", 5),
        ("order_lines", 6),
    ]

    r = runner.invoke(main, ["demo"], env=env)
    assert r.exit_code == 0 and "already in bronze" in r.stdout
    r = runner.invoke(main, ["demo", "--json"], env=env)
    assert json.loads(r.stdout) == {"ok": True, "seeded": False, "datasets": []}

    r = runner.invoke(main, ["demo", "--force"], env=env)
    assert r.exit_code == 0, r.output
    assert "✔ orders.csv → bronze.orders" in r.stdout
    assert re.search(r"bronze.customers\n  2,\d{3} rows, 7 columns", r.stdout)
    assert "Ingesting order_lines.csv" in r.stderr


def test_cli_demo_failure_names_the_problem_and_cleans_up(env, tmp_path) -> None:
    # order_lines.csv is ~1.5 MB: past a 1 MB limit, after the first three datasets went in.
    r = CliRunner().invoke(main, ["demo"], env={**env, "RATATOUILLE_MAX_INGEST_MB": "1"})
    assert r.exit_code == 1
    assert "✘ File too large" in r.stderr and "order_lines.csv" in r.stderr
    assert not list((tmp_path / "state" / "demo").iterdir())
    # Three datasets of four is not "already there": the next run seeds them all.
    r = CliRunner().invoke(main, ["demo", "--json"], env=env)
    assert r.exit_code == 0 and len(json.loads(r.stdout)["datasets"]) == 4
