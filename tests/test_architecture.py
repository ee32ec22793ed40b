"""The library stays free of the UI and the orchestrator, and the programs use only its public
API (import-linter checks both statically; these tests check them without it)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import lakehouse

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "lakehouse"
PROGRAMS = ("pipelines", "streamlit_app", "jupyter_ratatouille")
SUBPACKAGES = {
    "storage",
    "ingest",
    "tables",
    "transform",
    "query",
    "cli",
    "demo",
    "steps",
    "uploads",
}


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


def _public_modules() -> set[str]:
    """The modules lakehouse/__init__.py's docstring names as public, besides `lakehouse`."""
    return set(re.findall(r"`(lakehouse(?:\.\w+)+)`", lakehouse.__doc__ or ""))


def _non_public_imports(source: str, public: set[str]) -> list[str]:
    """Each import of the library in `source` that reaches past its public API."""
    exported = set(lakehouse.__all__)
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            bad += [
                a.name
                for a in node.names
                if a.name.split(".")[0] == "lakehouse" and a.name not in {"lakehouse", *public}
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "lakehouse":
                continue
            for a in node.names:
                target = f"{node.module}.{a.name}"
                if target in public or node.module in public:
                    continue
                if node.module == "lakehouse" and a.name in exported:
                    continue
                bad.append(target)
    return bad


def test_the_public_api_check_tells_public_from_internal() -> None:
    public = _public_modules()
    assert {"lakehouse.settings", "lakehouse.errors", "lakehouse.layers"} <= public
    fine = "from lakehouse import Lakehouse, demo\nfrom lakehouse.layers import Layer\n"
    assert _non_public_imports(fine, public) == []
    leaks = (
        "import lakehouse.lake\n"
        "from lakehouse.storage import open_storage\n"
        "from lakehouse import duck\n"
        "def f():\n    from lakehouse.tables.lineage import inputs_of\n"
    )
    assert _non_public_imports(leaks, public) == [
        "lakehouse.lake",
        "lakehouse.storage.open_storage",
        "lakehouse.duck",
        "lakehouse.tables.lineage.inputs_of",
    ]


def test_pipelines_and_the_app_import_only_the_librarys_public_api() -> None:
    public = _public_modules()
    leaks = {
        f"{path.relative_to(ROOT)}: {name}"
        for program in PROGRAMS
        for path in sorted((ROOT / program).rglob("*.py"))
        for name in _non_public_imports(path.read_text(), public)
    }
    assert leaks == set()
