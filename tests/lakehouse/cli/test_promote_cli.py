"""`ratatouille promote` as a user runs it: the asset key and exit 0, or a clear refusal
and exit 2 (JSON too)."""

import json
from pathlib import Path

from lakehouse import Lakehouse, Settings
from tests.lakehouse.cli.test_cli import run
from tests.support.notebooks import SETUP, write_notebook

SQL = "SELECT customer, count(*) AS n FROM silver.orders GROUP BY 1"
PUBLISH = f'lake.publish("gold", "order_totals", "{SQL}")'


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        "RATATOUILLE_LAKE_ROOT": str(tmp_path / "lake"),
        "RATATOUILLE_STATE_DIR": str(tmp_path / "state"),
        "RATATOUILLE_NOTEBOOK_STEPS_DIR": str(tmp_path / "notebooks" / "steps"),
        "RATATOUILLE_MODELS_DIR": str(tmp_path / "models"),
        "RATATOUILLE_DAGSTER_URL": "http://127.0.0.1:9",
    }
    settings = Settings(_env_file=None).replace(
        lake_root=tmp_path / "lake", state_dir=tmp_path / "state"
    )
    Lakehouse(settings).publish("silver", "orders", "SELECT 'a' AS customer UNION ALL SELECT 'b'")
    return env


def test_promote_prints_what_it_inferred_and_the_asset_key(tmp_path: Path) -> None:
    env = _env(tmp_path)
    nb = write_notebook(tmp_path / "notebooks" / "totals.ipynb", SETUP, PUBLISH)
    dry = run(["promote", str(nb), "--dry-run"], env, tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "reads     silver.orders" in dry.stdout and "gold.order_totals (2 rows" in dry.stdout
    assert "nothing was written" in dry.stdout
    done = run(["promote", str(nb)], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "gold/order_totals"
    assert "not reachable" in done.stdout  # no Dagster here: it says so, the step is saved
    assert (tmp_path / "notebooks" / "steps" / "order_totals.ipynb").exists()
    as_json = run(["promote", str(nb), "--json", "--name", "totals"], env, tmp_path)
    out = json.loads(as_json.stdout)
    assert (out["ok"], out["asset_key"], out["replaced"]) == (True, ["gold", "order_totals"], True)


def test_a_refusal_exits_2_with_its_reason(tmp_path: Path) -> None:
    env = _env(tmp_path)
    nb = write_notebook(tmp_path / "notebooks" / "idle.ipynb", SETUP, "x = 1")
    refused = run(["promote", str(nb)], env, tmp_path)
    assert refused.returncode == 2
    assert "The notebook publishes nothing" in refused.stderr and "Traceback" not in refused.stderr
    as_json = run(["promote", str(nb), "--json"], env, tmp_path)
    assert as_json.returncode == 2
    out = json.loads(as_json.stdout)
    assert (out["ok"], out["title"]) == (False, "The notebook publishes nothing")
    missing = run(["promote", str(tmp_path / "nope.ipynb")], env, tmp_path)
    assert missing.returncode == 2 and "No such notebook" in missing.stderr
