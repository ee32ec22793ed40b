"""`lake.promote` on a real kernel and a real lake: what it infers, what it writes, and each
refusal, which must come before anything is written or published."""

import json
from pathlib import Path

import pytest

from lakehouse import Lakehouse, PromoteError, Settings
from tests.support.lakedirs import lake_dirs
from tests.support.notebooks import SETUP, write_notebook

ORDERS = "SELECT * FROM (VALUES ('a', 1.5), ('b', 2.0), ('c', 4.0)) t(customer, amount)"
TOTALS = "SELECT customer, sum(amount) AS total FROM silver.orders GROUP BY 1"
PUBLISH = f'lake.publish("gold", "order_totals", "{TOTALS}")'


# The refusals do not depend on where the lake is: only the trial and the step run on both.
BOTH = pytest.mark.parametrize(
    "lake", ["local", pytest.param("s3", marks=pytest.mark.s3)], indirect=True
)


@pytest.fixture(params=["local"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lakehouse:
    values: dict[str, object] = dict(lake_dirs(tmp_path))
    if request.param == "s3":
        values |= request.getfixturevalue("s3_env")
    values |= {"dagster_url": "http://127.0.0.1:9", "promote_time_limit_s": 60}
    settings = Settings().replace(**values)
    lk = Lakehouse(settings)
    lk.publish("silver", "orders", ORDERS)
    lk.publish("silver", "customers", "SELECT 'a' AS customer")
    return lk


def _nb(lake: Lakehouse, *cells: str, name: str = "totals") -> Path:
    folder = lake.settings.notebook_steps_dir.parent
    return write_notebook(
        folder / f"{name}.ipynb", SETUP, *cells, title="# Totals\n\nPer customer."
    )


@BOTH
def test_a_dry_run_infers_reads_publish_and_checks_and_publishes_nothing(lake: Lakehouse) -> None:
    path = _nb(
        lake,
        "df = lake.sql('SELECT count(*) AS n FROM silver.customers').to_pandas()",
        # read only through a DuckDB connection: the trial cannot see it, the static reading can
        "con = lake.connect_duckdb()\nsizes = con.execute('SELECT * FROM silver.orders').arrow()",
        f"snap = {PUBLISH}",
        "lake.check('totals are positive', 'SELECT min(total) > 0 FROM gold.order_totals')",
        "lake.check('three customers', lake.read('gold', 'order_totals').num_rows == 3)",
        "assert snap.rows == 3, 'one row per customer'",
        "lake.check('never true', 'false')",
    )
    p = lake.promote(path, dry_run=True)
    assert (p.table, p.asset_key, p.rows, p.name) == (
        "gold.order_totals",
        ["gold", "order_totals"],
        3,
        "order_totals",
    )
    assert p.reads == ["silver.customers", "silver.orders"]  # not the table it publishes
    assert p.checks == [
        "totals are positive",
        "three customers",
        "one row per customer",
        "never true",
    ]
    assert p.failed_checks == ["never true"]
    assert p.dry_run and p.step_path is None and p.run_s > 0
    assert "order_totals" not in {t.name for t in lake.tables("gold")}, (
        "the trial published for real"
    )
    assert not lake.settings.notebook_steps_dir.exists() or not any(
        lake.settings.notebook_steps_dir.iterdir()
    )
    live = lake.promote(path)  # runs nothing again: the dry run's trial serves it
    assert live.run_s == p.run_s and live.step_path is not None
    staging = lake.settings.state_dir / "staging"
    assert not [p for p in staging.iterdir() if not p.name.endswith(".lock")], "scratch left behind"


@BOTH
def test_promote_writes_the_step_and_says_dagster_is_not_there(lake: Lakehouse) -> None:
    path = _nb(lake, f"snap = {PUBLISH}", "assert snap.rows > 0")
    p = lake.promote(path)
    step = Path(p.step_path or "")
    assert step == lake.settings.notebook_steps_dir.resolve() / "order_totals.ipynb"
    nb = json.loads(step.read_text())
    meta = nb["metadata"]["ratatouille"]
    assert (meta["deps"], meta["publishes"], meta["checks"]) == (
        ["silver.orders"], "order_totals", ["assert snap.rows > 0"],
    )  # fmt: skip
    assert meta["source"] == "totals.ipynb" and meta["description"] == "Per customer."
    tags = [c["metadata"].get("tags") for c in nb["cells"][:2]]
    assert tags == [["parameters"], ["ratatouille-setup"]]
    assert all(c.get("outputs", []) == [] for c in nb["cells"])
    assert "not reachable" in p.dagster and p.run_id is None and not p.replaced

    again = lake.promote(path)  # re-promoting the same notebook updates its step
    assert again.replaced and again.step_path == p.step_path
    renamed = lake.promote(path, name="totals_step")
    assert renamed.replaced and Path(renamed.step_path or "").name == "totals_step.ipynb"
    assert sorted(f.name for f in step.parent.glob("*.ipynb")) == ["totals_step.ipynb"]


@pytest.mark.parametrize(
    ("cells", "title", "says"),
    [
        (["x = lake.sql('SELECT 1')"], "The notebook publishes nothing", "published nothing"),
        (
            [PUBLISH, 'lake.publish("gold", "second", "SELECT 1 AS one")'],
            "The notebook publishes more than one table",
            "gold.order_totals, gold.second",
        ),
        (["1 / 0", PUBLISH], "The notebook failed", "cell 3 raised ZeroDivisionError"),
        (["import time\ntime.sleep(60)", PUBLISH], "The notebook took too long", "more than 8 s"),
        (
            ['lake.publish("silver", "orders2", "SELECT 1 AS one")'],
            "The notebook failed",
            "A notebook step publishes a gold table",
        ),
    ],
    ids=["nothing", "two-tables", "fails", "too-long", "silver"],
)
def test_refusals_come_before_anything_is_written(
    lake: Lakehouse, cells: list[str], title: str, says: str
) -> None:
    lake = Lakehouse(lake.settings.replace(promote_time_limit_s=8), lake.storage)
    with pytest.raises(PromoteError) as err:
        lake.promote(_nb(lake, *cells))
    assert err.value.title == title
    assert says in err.value.msg
    assert not list(lake.settings.notebook_steps_dir.glob("*.ipynb"))
    assert {t.name for t in lake.tables("gold")} == set()


def test_reading_files_outside_the_lake_is_refused(lake: Lakehouse, tmp_path: Path) -> None:
    data = tmp_path / "downloads" / "sales.csv"
    data.parent.mkdir()
    data.write_text("customer,amount\na,1\n")
    for how in (
        f"import pandas as pd\nextra = pd.read_csv({str(data)!r})",
        f"extra = lake.sql(\"SELECT * FROM read_csv('{data}')\")",
    ):
        with pytest.raises(PromoteError) as err:
            lake.promote(_nb(lake, how, PUBLISH))
        assert err.value.title == "The notebook reads files outside the lake"
        assert str(data) in err.value.msg or "read_csv" in err.value.msg
    assert not list(lake.settings.notebook_steps_dir.glob("*.ipynb"))


def test_a_name_another_model_or_step_has_is_refused(lake: Lakehouse) -> None:
    models = lake.settings.models_dir
    models.mkdir(parents=True, exist_ok=True)
    (models / "order_totals.sql").write_text(TOTALS)
    with pytest.raises(PromoteError, match=r"SQL model order_totals\.sql") as err:
        lake.promote(_nb(lake, PUBLISH))
    assert err.value.title == "Name taken"
    (models / "order_totals.sql").unlink()

    lake.promote(_nb(lake, PUBLISH, name="first"))
    with pytest.raises(PromoteError, match=r"made by the notebook step order_totals\.ipynb"):
        lake.promote(_nb(lake, PUBLISH, name="second"))  # another notebook, the same table


def test_a_step_file_or_a_missing_notebook_is_refused(lake: Lakehouse, tmp_path: Path) -> None:
    with pytest.raises(PromoteError, match="no notebook"):
        lake.promote(tmp_path / "nope.ipynb")
    p = lake.promote(_nb(lake, PUBLISH))
    with pytest.raises(PromoteError, match="already") as err:
        lake.promote(p.step_path or "")
    assert err.value.title == "Already a step"
