"""The library stays free of the UI and the orchestrator (import-linter checks it statically)."""

import subprocess
import sys


def test_importing_lakehouse_loads_neither_streamlit_nor_dagster() -> None:
    code = (
        "import sys, lakehouse, lakehouse.cli.main, lakehouse.cli.doctor; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'streamlit', 'dagster', 'dagstermill', 'altair', 'pandas'}); print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
