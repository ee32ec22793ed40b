"""Inside a notebook step's kernel: the cell `ratatouille promote` adds runs `start()`.

It turns the notebook's top-level `assert` statements into recorded checks (they still stop
the notebook when they fail) and, in a promote trial, notes files the notebook's Python
opens outside the lake: a step runs on the pipeline's machine, where they may not exist.
"""

from __future__ import annotations

import ast
import os
import site
import sys
from pathlib import Path
from typing import Any

from lakehouse.settings import Settings
from lakehouse.steps.checks import check_description
from lakehouse.steps.context import StepContext

ASSERT_HOOK = "__ratatouille_assert__"
_CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pth")
_SYSTEM = ("/usr", "/lib", "/lib64", "/etc", "/proc", "/sys", "/dev", "/run", "/var", "/opt")
_started = False


def assert_description(node: ast.Assert) -> str:
    """An assert's check name: its message if it is a literal, else its source."""
    if isinstance(node.msg, ast.Constant) and isinstance(node.msg.value, str):
        return check_description(node.msg.value)
    return check_description(f"assert {ast.unparse(node.test)}")


def top_level_asserts(tree: ast.Module) -> list[ast.Assert]:
    return [n for n in tree.body if isinstance(n, ast.Assert)]


class _AssertsAsChecks(ast.NodeTransformer):
    """`assert t, m` at a cell's top level → `if not __ratatouille_assert__(name, t): raise
    AssertionError(m)`: evaluated once, recorded, and still stops the notebook."""

    def visit_Module(self, node: ast.Module) -> ast.Module:
        body: list[ast.stmt] = []
        for stmt in node.body:
            if not isinstance(stmt, ast.Assert):
                body.append(stmt)
                continue
            call = ast.Call(
                ast.Name(ASSERT_HOOK, ast.Load()),
                [ast.Constant(assert_description(stmt)), stmt.test],
                [],
            )
            error = ast.Call(
                ast.Name("AssertionError", ast.Load()), [stmt.msg] if stmt.msg else [], []
            )
            check = ast.If(ast.UnaryOp(ast.Not(), call), [ast.Raise(error, None)], [])
            body.append(ast.copy_location(check, stmt))
        node.body = body
        return ast.fix_missing_locations(node)


def start() -> None:
    """Set up recording in this kernel (once); outside a step it does nothing."""
    global _started
    ctx = StepContext.from_env()
    if ctx is None or _started:
        return
    _started = True
    from IPython import get_ipython

    ip = get_ipython()
    if ip is not None:

        def record_assert(name: str, value: Any) -> bool:
            passed = bool(value)
            ctx.write("check", name=name, passed=passed, detail=f"value: {value!r}"[:300],
                      kind="assert")  # fmt: skip
            return passed

        ip.user_ns[ASSERT_HOOK] = record_assert
        ip.ast_transformers.append(_AssertsAsChecks())
    if ctx.mode == "trace":
        _watch_files(ctx)


def _allowed_roots() -> tuple[str, ...]:
    settings = Settings()
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *_SYSTEM}
    roots |= {*site.getsitepackages(), site.getusersitepackages()}
    roots |= {str(Path(p).resolve()) for p in (settings.lake_root, settings.state_dir)}
    roots.add(str(Path(__file__).resolve().parents[1]))  # the library itself
    return tuple(sorted(r.rstrip("/") + "/" for r in roots if r))


def _watch_files(ctx: StepContext) -> None:
    """Record files opened for reading outside the lake, the Python install and the system.

    Python's own opens only (pandas, open()): readers in native code (DuckDB, pyarrow,
    Polars) are not seen here; their SQL is checked by the lake instead."""
    roots = _allowed_roots()
    home = str(Path.home()) + "/"
    seen: set[str] = set()

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or not args or isinstance(args[0], int):
            return
        path, mode, flags = [*args, None, None][:3]
        if mode is not None and any(c in str(mode) for c in "wax+"):
            return
        if mode is None and isinstance(flags, int) and flags & os.O_ACCMODE != os.O_RDONLY:
            return
        try:
            full = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return
        if full in seen or full.endswith(_CODE_SUFFIXES) or full.startswith(roots):
            return
        rest = full[len(home) :] if full.startswith(home) else ""
        if rest.startswith("."):  # ~/.ipython, ~/.cache, ~/.config: tools' own files
            return
        if not os.path.isfile(full):
            return
        seen.add(full)
        ctx.write("outside", what=full, how="open")

    sys.addaudithook(hook)
