"""The notebooks run top to bottom in a real kernel against a small lake in `tmp_path`."""

import os
import sys
from pathlib import Path

import nbformat
import pyarrow as pa
import pytest
from nbclient import NotebookClient

import lakehouse
from lakehouse import Lakehouse, Settings, StepContext, read_events

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
GETTING_STARTED = NOTEBOOKS / "getting_started.ipynb"
# The notebook as its author wrote it, and the pipeline step `ratatouille promote` made of it.
PRODUCT_PERFORMANCE = NOTEBOOKS / "product_performance.ipynb"
PRODUCT_PERFORMANCE_STEP = NOTEBOOKS / "steps" / "product_performance.ipynb"

# Small demo silver tables with the traps the SQL must handle: categories in mixed case and
# with stray spaces, cancelled and returned orders, a negative quantity, a null discount and a
# product that never sold.
CUSTOMERS = pa.table(
    {
        "customer_id": pa.array([1, 2], pa.int64()),
        "name": ["Ada", "Bruno"],
        "email": ["ada@example.com", "bruno@example.com"],
        "country": ["France", "Germany"],
        "city": ["Paris", "Berlin"],
        "signup_date": pa.array([19000, 19100], pa.date32()),
        "segment": ["consumer", "business"],
    }
)
PRODUCTS = pa.table(
    {
        "product_id": pa.array([1, 2, 3, 4], pa.int64()),
        "name": ["Widget", "Gizmo", "Novel", "Atlas"],
        "category": [" gadgets", "Gadgets", "books", "BOOKS "],
        "unit_price": [10.0, 5.0, 20.0, 30.0],
    }
)
ORDERS = pa.table(
    {
        "order_id": pa.array([10, 11, 12, 13], pa.int64()),
        "customer_id": pa.array([1, 2, 1, 2], pa.int64()),
        "order_date": pa.array([19500, 19501, 19502, 19503], pa.date32()),
        "status": ["completed", "completed", "cancelled", "returned"],
        "channel": ["web", "store", "web", "web"],
    }
)
ORDER_LINES = pa.table(
    {
        "order_id": pa.array([10, 10, 11, 11, 11, 12, 13], pa.int64()),
        "line_no": pa.array([1, 2, 1, 2, 3, 1, 1], pa.int64()),
        "product_id": pa.array([1, 3, 1, 2, 3, 2, 3], pa.int64()),
        "quantity": pa.array([2, 1, 1, 3, -1, 10, 5], pa.int64()),
        "unit_price": [10.0, 20.0, 12.0, 5.0, 20.0, 5.0, 20.0],
        "discount": [0.1, None, None, 0.0, None, None, None],
    }
)
# Worked out by hand from the lines of completed orders 10 and 11 with quantity > 0:
#   Widget: 2 * 10 * (1 - 0.1) + 1 * 12 = 30 over orders 10 and 11
#   Gizmo:  3 * 5 * (1 - 0)         = 15 (its 10 units in order 12 were cancelled)
#   Novel:  1 * 20                  = 20 (the -1 in order 11 and the return in 13 do not count)
#   Atlas:  never sold, kept with zeros
EXPECTED_PERFORMANCE = [
    {"product_id": 3, "name": "Novel", "category": "Books", "orders": 1, "units": 1,
     "revenue": 20.0, "rank_in_category": 1},
    {"product_id": 4, "name": "Atlas", "category": "Books", "orders": 0, "units": 0,
     "revenue": 0.0, "rank_in_category": 2},
    {"product_id": 1, "name": "Widget", "category": "Gadgets", "orders": 2, "units": 3,
     "revenue": 30.0, "rank_in_category": 1},
    {"product_id": 2, "name": "Gizmo", "category": "Gadgets", "orders": 1, "units": 3,
     "revenue": 15.0, "rank_in_category": 2},
]  # fmt: skip


@pytest.fixture
def settings(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An empty local lake; the kernels inherit these variables from this process."""
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RATATOUILLE_STORAGE", "local")
    monkeypatch.setenv("RATATOUILLE_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("RATATOUILLE_STATE_DIR", str(tmp_path / "state"))
    # A python3 kernelspec in the user's Jupyter folder would win over the venv's; JUPYTER_PATH
    # comes first, so the kernel is this interpreter (jupyter_client maps `python` to it).
    monkeypatch.setenv("JUPYTER_PATH", str(Path(sys.prefix) / "share" / "jupyter"))
    monkeypatch.chdir(tmp_path)  # so no developer .env is read, here or in the kernel
    return Settings()


@pytest.fixture
def demo_lake(settings: Settings) -> Lakehouse:
    lake = Lakehouse(settings)
    tables = {
        "customers": CUSTOMERS,
        "products": PRODUCTS,
        "orders": ORDERS,
        "order_lines": ORDER_LINES,
    }
    for name, table in tables.items():
        lake.publish("silver", name, table)
    return lake


# nbformat ships py.typed but leaves these two unannotated; mypy refuses untyped calls.
def load(path: Path) -> nbformat.NotebookNode:
    nb: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return nb


def code_cell(source: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell: nbformat.NotebookNode = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def execute(
    nb: nbformat.NotebookNode, cwd: Path, env: dict[str, str] | None = None
) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel; a failing cell raises CellExecutionError."""
    client = NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env={**os.environ, **(env or {})})
    return nb


def stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream" and out.name == "stdout"
    )


def outputs(nb: nbformat.NotebookNode, cell_id: str) -> list[nbformat.NotebookNode]:
    return next(c.outputs for c in nb.cells if c.get("id") == cell_id)


def test_getting_started_runs_on_the_demo_tables(demo_lake: Lakehouse, tmp_path) -> None:
    nb = load(GETTING_STARTED)
    nb.cells.append(code_cell("import sys, lakehouse\nprint(sys.executable, lakehouse.__file__)"))
    nb = execute(nb, tmp_path)

    printed = stdout(nb)
    assert f"{sys.executable} {lakehouse.__file__}" in printed  # the venv's kernel, this repo
    assert "ratatouille demo" not in printed
    assert "gold.my_revenue_by_country: 3 rows" in printed
    assert any("text/html" in out.get("data", {}) for out in outputs(nb, "tables"))
    rows = demo_lake.read("gold", "my_revenue_by_country").to_pylist()
    assert {(r["country"], r["category"], r["revenue"]) for r in rows} == {
        ("France", "Gadgets", 18.0),
        ("France", "Books", 20.0),
        ("Germany", "Gadgets", 27.0),
    }
    assert len(demo_lake.history("gold", "my_revenue_by_country")) == 1


def test_getting_started_on_an_empty_lake_says_what_to_do(settings: Settings, tmp_path) -> None:
    nb = execute(load(GETTING_STARTED), tmp_path)

    printed = stdout(nb)
    assert f"The lake at {tmp_path / 'lake'} is empty." in printed
    assert "Run `ratatouille demo` and start the pipelines" in printed
    assert Lakehouse(settings).tables() == []  # nothing was published on the way


def test_product_performance_publishes_the_gold_table(demo_lake: Lakehouse, tmp_path) -> None:
    nb = load(PRODUCT_PERFORMANCE)
    nb = execute(nb, tmp_path)

    assert "gold.product_performance: 4 rows" in stdout(nb)
    gold = demo_lake.read("gold", "product_performance")
    assert gold.to_pylist() == EXPECTED_PERFORMANCE
    assert dict(zip(gold.schema.names, map(str, gold.schema.types), strict=True)) == {
        "product_id": "int64",
        "name": "string",
        "category": "string",
        "orders": "int64",
        "units": "int64",
        "revenue": "double",
        "rank_in_category": "int64",
    }
    assert demo_lake.snapshot("gold", "product_performance").run_id is None  # run by hand


def test_the_step_records_the_run_and_its_checks(demo_lake: Lakehouse, tmp_path) -> None:
    """As Dagster runs it: dagstermill swaps `parameters` for a cell defining its `context`, and
    the step's environment names the run; the snapshot records the run, the record the checks."""
    nb = load(PRODUCT_PERFORMANCE_STEP)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = 'from types import SimpleNamespace\ncontext = SimpleNamespace(run_id="run-42")'
    nb.cells[index] = code_cell(injected, tags=("injected-parameters",))
    record = tmp_path / "events.jsonl"
    step = StepContext("run", str(record), "run-42", table="product_performance")
    execute(nb, tmp_path, step.env())

    assert demo_lake.snapshot("gold", "product_performance").run_id == "run-42"
    checks = {e["name"]: e["passed"] for e in read_events(record) if e["event"] == "check"}
    assert checks == {"revenue is never negative": True, "one best seller per category": True}


@pytest.mark.parametrize(
    "path",
    [GETTING_STARTED, PRODUCT_PERFORMANCE, PRODUCT_PERFORMANCE_STEP],
    ids=["getting_started", "product_performance", "step"],
)
def test_notebooks_are_stored_clean(path: Path) -> None:
    """Outputs would leak one machine's data into git; the kernel must be the venv's python3."""
    nb = load(path)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None


def test_the_step_is_what_promote_makes_of_the_notebook(demo_lake: Lakehouse) -> None:
    """The committed step came from `ratatouille promote`: what a trial of the notebook infers
    now is what the step declares, so lineage and checks in Dagster match the code."""
    meta = load(PRODUCT_PERFORMANCE_STEP).metadata.ratatouille
    p = demo_lake.promote(PRODUCT_PERFORMANCE, dry_run=True)
    assert (meta["deps"], meta["checks"]) == (p.reads, p.checks)
    assert p.reads == ["silver.order_lines", "silver.orders", "silver.products"]
    assert (meta["publishes"], p.table) == ("product_performance", "gold.product_performance")
    assert meta["source"] == "product_performance.ipynb"
    assert "ratatouille" not in load(PRODUCT_PERFORMANCE).metadata  # the author's stays plain
