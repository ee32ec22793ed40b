"""`ratatouille promote` as a user runs it: the asset key and exit 0, or a clear refusal
and exit 2 (JSON too)."""

import json
import os
import pty
import subprocess
from pathlib import Path

from lakehouse import Lakehouse, Settings
from tests.lakehouse.cli.test_cli import RATATOUILLE, run
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


REFUSED = {
    "nothing": (["x = 1"], "The notebook publishes nothing"),
    "two-tables": (
        [PUBLISH, 'lake.publish("gold", "other", "SELECT 1 AS one")'],
        "The notebook publishes more than one table",
    ),
    "fails": (["1 / 0"], "The notebook failed"),
    "too-long": (["import time\ntime.sleep(60)", PUBLISH], "The notebook took too long"),
    "outside": (
        ["open('../data/prices.csv').read()", PUBLISH],
        "The notebook reads files outside the lake",
    ),
    "name-taken": ([PUBLISH], "Name taken"),
}


def test_every_refusal_exits_2_with_its_reason(tmp_path: Path) -> None:
    env = _env(tmp_path) | {"RATATOUILLE_PROMOTE_TIME_LIMIT_S": "8"}
    (tmp_path / "models").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prices.csv").write_text("sku,price\na,1\n")
    for case, (cells, title) in REFUSED.items():
        models = tmp_path / "models" / "order_totals.sql"
        if case == "name-taken":
            models.write_text("SELECT 1 AS one")
        nb = write_notebook(
            tmp_path / "notebooks" / f"{case.replace('-', '_')}.ipynb", SETUP, *cells
        )
        refused = run(["promote", str(nb)], env, tmp_path)
        assert refused.returncode == 2, (case, refused.stdout, refused.stderr)
        assert title in refused.stderr and "Traceback" not in refused.stderr, (case, refused.stderr)
    as_json = run(["promote", str(nb), "--json"], env, tmp_path)
    assert as_json.returncode == 2
    out = json.loads(as_json.stdout)
    assert (out["ok"], out["title"]) == (False, "Name taken")
    missing = run(["promote", str(tmp_path / "nope.ipynb")], env, tmp_path)
    assert missing.returncode == 2 and "No such notebook" in missing.stderr
    assert not (tmp_path / "notebooks" / "steps").exists() or not any(
        (tmp_path / "notebooks" / "steps").iterdir()
    )


def test_at_a_terminal_it_asks_before_going_live(tmp_path: Path) -> None:
    env = _env(tmp_path)
    nb = write_notebook(tmp_path / "notebooks" / "totals.ipynb", SETUP, PUBLISH)
    main, tty = pty.openpty()
    proc = subprocess.Popen(
        [RATATOUILLE, "promote", str(nb)],
        env={**os.environ, **env}, cwd=tmp_path, stdin=tty, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.write(main, b"n\n")
    out, _ = proc.communicate(timeout=120)
    os.close(main)
    os.close(tty)
    assert proc.returncode == 0
    assert "publishes gold.order_totals" in out and "Make it live?" in out
    assert "Nothing was written." in out
    assert not (tmp_path / "notebooks" / "steps" / "order_totals.ipynb").exists()
