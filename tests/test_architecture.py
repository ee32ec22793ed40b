"""The library stays free of the UI and the orchestrator (import-linter checks it statically)."""

import subprocess
import sys
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "lakehouse"
SUBPACKAGES = {"storage", "ingest", "tables", "transform", "query", "cli", "demo"}


def test_importing_lakehouse_loads_neither_streamlit_nor_dagster() -> None:
    code = (
        "import sys, lakehouse, lakehouse.cli.main, lakehouse.cli.doctor, lakehouse.demo; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'streamlit', 'dagster', 'dagstermill', 'altair', 'pandas'}); print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_library_is_a_small_core_and_subpackages_along_the_datas_path() -> None:
    top = sorted(p.name for p in LIBRARY.glob("*.py"))
    packages = {p.parent.name for p in LIBRARY.glob("*/__init__.py")}
    assert len(top) <= 12, top
    assert packages == SUBPACKAGES


def test_no_library_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(LIBRARY)): n
        for p in LIBRARY.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}
