"""A notebook step's context: how a `lake` inside a notebook knows it runs as a pipeline step.

`ratatouille promote` (a trial) and Dagster (a run) start the notebook's kernel with
`RATATOUILLE_STEP` set; `connect()` reads it and the lake then records what the notebook
reads, publishes and checks in a JSON-lines file the caller reads once the kernel is done.
In a trial, publishes go to a scratch lake beside the staging files, so nothing goes live
before the author has seen what was inferred; later reads in the same notebook see them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from lakehouse.errors import LakehouseError

ENV = "RATATOUILLE_STEP"
_LAKE_TABLE = re.compile(r"\b(bronze|silver|gold)\s*\.\s*\"?([a-z_][a-z0-9_]*)\b", re.I)
# File readers and `FROM 'path'`: in a step, data comes from lake tables only.
_FILE_READS = re.compile(
    r"\b(read_\w+|\w+_scan|glob|sniff_csv|parquet_\w+)\s*\(|\b(from|join)\s+'[^']*'", re.I
)


class PromoteError(LakehouseError):
    default_title = "Cannot promote this notebook"


class StepError(LakehouseError):
    """A notebook did something a pipeline step may not (raised inside the notebook)."""

    default_title = "Not allowed in a pipeline step"


@dataclass(frozen=True)
class StepContext:
    mode: Literal["trace", "run"]
    record: str  # the JSON-lines file of events
    run_id: str | None = None
    scratch: str | None = None  # trace: the scratch lake's folder
    table: str | None = None  # run: the one gold table this step publishes

    @classmethod
    def from_env(cls) -> StepContext | None:
        raw = os.environ.get(ENV)
        if not raw:
            return None
        return cls(**json.loads(raw))

    def env(self) -> dict[str, str]:
        return {ENV: json.dumps(asdict(self))}

    def write(self, event: str, **fields: Any) -> None:
        # One write per line, appended: a kernel killed mid-run leaves whole lines behind.
        line = json.dumps({"event": event, **fields}, default=str) + "\n"
        with open(self.record, "a", encoding="utf-8") as f:
            f.write(line)

    def reads(self, tables: Iterable[str], how: str) -> None:
        names = sorted(set(tables))
        if names:
            self.write("read", tables=names, how=how)


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # a line cut by a killed kernel
            continue
    return out


def named_tables(sql: str) -> list[str]:
    """`layer.table` names written in SQL the query guard cannot read: a superset, since a
    step's inputs may be over-counted (an extra rebuild) but never missed."""
    return sorted({f"{m[1].lower()}.{m[2].lower()}" for m in _LAKE_TABLE.finditer(sql)})


def reads_files(sql: str) -> bool:
    """Whether SQL names a file, URL or file-reading function (what only a lake table may be)."""
    return bool(_FILE_READS.search(sql))
