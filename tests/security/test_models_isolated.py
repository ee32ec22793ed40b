"""One bad model breaks one asset (finding 3 of the security review).

A model named like another asset's table or with a schedule that is five fields but no cron
used to stop the whole code location loading: sensors, landing ingest and silver builds all
stopped. Now each such file becomes an asset that fails with its reason, under a key no other
asset has, and everything else loads and runs.
"""

import io
import json
from pathlib import Path

import dagster as dg
import pytest

from lakehouse import ConfigError, Lakehouse
from lakehouse.transform import models
from pipelines.definitions import build_defs
from pipelines.keys import BRONZE, SILVER, gold_key
from tests.pipelines.lake_fixtures import instance, lake
from tests.report import Record

__all__ = ["instance", "lake"]

GOOD = "SELECT customer_id, sum(amount) AS revenue FROM silver.orders GROUP BY ALL"


def _files(lake: Lakehouse, secret: Path) -> dict[str, str]:
    """Model files written by hand (no save in between) → words their failure must carry."""
    folder = lake.settings.models_dir
    (folder / "daily_orders.sql").write_text(GOOD)  # the Python asset's table
    (folder / "perf.sql").write_text(GOOD)  # the notebook step's table
    (folder / "bad_minute.sql").write_text(f"-- schedule: 61 * * * *\n{GOOD}")
    (folder / "bad_weekday.sql").write_text(f"-- schedule: * * * * foo\n{GOOD}")
    (folder / "leak.sql").write_text(f"SELECT * FROM read_csv('{secret}')")
    (folder / "good.sql").write_text(f"-- schedule: 0 6 * * *\n{GOOD}")
    notebook = {"cells": [], "metadata": {"ratatouille": {"publishes": "perf"}}, "nbformat": 4}
    (lake.settings.notebook_steps_dir / "performance.ipynb").write_text(json.dumps(notebook))
    return {
        "daily_orders": "gold/daily_orders",
        "perf": "performance.ipynb",
        "bad_minute": "cron",
        "bad_weekday": "cron",
        "leak": "read_csv",
    }


def _materialize(
    defs: dg.Definitions, instance: dg.DagsterInstance, key: dg.AssetKey
) -> dg.ExecuteInProcessResult:
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    return dg.materialize(
        assets,
        selection=[key],
        instance=instance,
        resources=dict(defs.resources or {}),
        raise_on_error=False,
    )


def test_bad_models_break_only_themselves(
    lake: Lakehouse, instance: dg.DagsterInstance, tmp_path: Path, record: Record
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\nhost-secret\n")
    reasons = _files(lake, secret)
    lake.ingest(io.BytesIO(b"customer_id,amount\n1,10\n1,5\n"), dataset="orders", filename="o.csv")
    lake.build_silver("orders")

    defs = build_defs()
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    assert {BRONZE, SILVER, gold_key("daily_orders"), gold_key("perf"), gold_key("good")} <= keys
    assert {s.name for s in repo.sensor_defs} >= {"bronze_batches", "landing_files"}
    assert {s.name for s in repo.schedule_defs} == {"good_schedule", "housekeeping_schedule"}
    # The taken names stay with their owners; the clashing files get keys of their own.
    assert "python" in graph.get(gold_key("daily_orders")).kinds
    assert "ipynb" in graph.get(gold_key("perf")).kinds
    broken = {
        "daily_orders": dg.AssetKey(["invalid_model", "daily_orders"]),
        "perf": dg.AssetKey(["invalid_model", "perf"]),
        "bad_minute": gold_key("bad_minute"),
        "bad_weekday": gold_key("bad_weekday"),
        "leak": gold_key("leak"),
    }
    assert set(broken.values()) <= keys

    for name, key in broken.items():
        result = _materialize(defs, instance, key)
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert reasons[name] in str(failure.step_failure_data.error), name
    assert _materialize(defs, instance, gold_key("good")).success
    assert lake.sql("SELECT count(*) AS n FROM gold.good").to_pylist() == [{"n": 1}]
    assert "host-secret" not in str(lake.tables("gold"))
    record(
        f"models dir with a daily_orders.sql clash, a notebook-table clash, crons "
        f"`61 * * * *` and `* * * * foo`, a host-file reader ({lake.settings.storage})",
        "code location loads (validate_loadable); sensors, silver, the Python and notebook "
        "assets keep their keys; each bad file is one asset failing with its reason",
        figures=f"{len(broken)} broken assets, {len(keys)} assets loaded",
    )


@pytest.mark.parametrize("cron", ["61 * * * *", "* * * * foo", "0 0 30 2 *", "* * * *"])
def test_bad_cron_is_refused_at_save(lake: Lakehouse, cron: str, record: Record) -> None:
    """Five fields that are no cron, a date that never comes, four fields."""
    with pytest.raises(ConfigError, match="cron"):
        models.save(lake.settings, "m", f"-- schedule: {cron}\n{GOOD}", storage=lake.storage)
    assert not (lake.settings.models_dir / "m.sql").exists()
    record(f"save a model with `-- schedule: {cron}`", "refused at save by croniter")


def test_taken_names_are_refused_at_save(lake: Lakehouse, record: Record) -> None:
    lake.publish("gold", "daily_orders", "SELECT 1 AS x")  # what the Python asset made
    with pytest.raises(ConfigError, match="no model file"):
        models.save(lake.settings, "daily_orders", GOOD, storage=lake.storage)
    with pytest.raises(ConfigError, match="gold/weekly"):  # named by Dagster, not yet built
        models.save(lake.settings, "weekly", GOOD, storage=lake.storage, taken=["weekly"])
    assert list(lake.settings.models_dir.iterdir()) == []
    record(
        f"save models named like a gold table or a Dagster asset ({lake.settings.storage})",
        "refused at save with who owns the name; no file written",
    )
