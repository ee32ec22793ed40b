"""Seeding a lake with the demo data: the four datasets into bronze, and pinned charts."""

import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from lakehouse.demo.generate import DATASETS, generate
from lakehouse.errors import StorageError
from lakehouse.ids import new_id
from lakehouse.ingest.load import IngestResult
from lakehouse.lake import Lakehouse
from lakehouse.layers import Layer
from lakehouse.query.charts import ChartSpec
from lakehouse.query.saved_queries import QueryStore, SavedQuery
from lakehouse.tables import catalog


def seed(
    lake: Lakehouse, *, force: bool = False, progress: Callable[[str], None] | None = None
) -> list[IngestResult]:
    """Ingest the demo datasets into bronze, replacing them; nothing (and []) when all four are
    there already, unless `force`."""
    say = progress or _quiet
    found = catalog.find_tables(lake.storage, [(Layer.BRONZE.value, n) for n in DATASETS])
    if not force and all(found.values()):
        return []
    tmp = lake.settings.state_dir / "demo" / new_id()
    try:
        say("Generating the demo data…")
        files = _generate_into(tmp)
        results = []
        for path in files:
            say(f"Ingesting {path.name}…")
            results.append(
                lake.ingest(path, dataset=path.stem, mode="replace", who="ratatouille demo")
            )
        seed_saved_queries(QueryStore(lake.settings.state_dir / "app.sqlite"))
        return results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Saved, pinned queries over the demo's gold models (pipelines/models/*.sql), drawn on Home.
# The chart is the chart builder's spec as a dict (`asdict(ChartSpec)`).
DEMO_QUERIES = {
    "Revenue by month": (
        "SELECT month, category, revenue FROM gold.revenue_by_month ORDER BY month, category",
        ChartSpec("line", "month", "revenue", "sum", color="category", time_grain="month"),
    ),
    "Top customers by lifetime revenue": (
        # Names repeat among 2,000 customers: the id keeps two Emma Smiths apart.
        "SELECT name || ' #' || customer_id AS customer, lifetime_revenue\n"
        "FROM gold.customer_lifetime_value\nORDER BY lifetime_revenue DESC\nLIMIT 10",
        ChartSpec("bar", "customer", "lifetime_revenue", "sum"),
    ),
}


def seed_saved_queries(store: QueryStore) -> list[SavedQuery]:
    """Save and pin the demo charts; a query the user already has under that name is kept."""
    return [
        store.save(name, sql, chart=asdict(spec), pinned=True, user="ratatouille demo", shared=True)
        for name, (sql, spec) in DEMO_QUERIES.items()
        if store.get(name) is None
    ]


def _generate_into(folder: Path) -> list[Path]:
    try:
        return generate(folder)
    except OSError as e:
        raise StorageError(
            f"Could not write the demo files to {folder}: {e.strerror or e}. "
            "Is RATATOUILLE_STATE_DIR writable, with some space left?",
            title="Cannot write the demo data",
        ) from e


def _quiet(message: str) -> None:
    pass
