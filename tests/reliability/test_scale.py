"""Scale at CI size: TPC-H SF1 `lineitem` (6M rows, 740 MB CSV) through landing → bronze →
silver → a gold SQL model → playground queries, with the code `make scale` runs at SF10
(benchmarks/scale.py): every stage a fresh child process, its peak RSS read by the parent.

The S3 case runs at SF0.1 (600k rows, 72 MB): at SF1 it took 2-3 min on a busy 2-core box,
and CI has about 3 min for this file. It starts its own SeaweedFS server in the scratch folder
(as `make scale` does), so the bytes the server holds go when the folder does.
"""

from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_ingest, scale
from tests.reliability.conftest import Record

pytestmark = pytest.mark.slow


# lineitem's rows at each scale factor (TPC-H dbgen; SF1 is the spec's figure).
ROWS = {1.0: bench_ingest.SF1_ROWS, 0.1: 600_572}


def lineitem(sf: float) -> tuple[Path, dict[str, Any]]:
    """The CSV (generated once into benchmarks/data/) and raw DuckDB's answers on it."""
    csv = bench_ingest.ensure_csv(sf)
    return csv, scale.reference(csv) | {"csv_mb": csv.stat().st_size / 2**20}


@pytest.mark.timeout(600)  # ~1.5 min idle; a loaded 2-core box can take 3-4
@pytest.mark.parametrize(
    ("mode", "sf"), [("local", 1.0), pytest.param("s3", 0.1, marks=pytest.mark.s3)]
)
def test_lineitem_from_landing_to_playground(mode: str, sf: float, record: Record) -> None:
    csv, ref = lineitem(sf)
    assert ref["rows"] == ROWS[sf], "raw DuckDB reads the whole CSV"
    stages = scale.run_mode(mode, csv, log=False)
    v = scale.verdict(mode, stages, ref, sf)
    record(v.tried, v.held, v.figures)
    by = {s.stage: s for s in stages}
    assert not v.problems, "\n".join(v.problems)
    assert by["ingest"].rows == by["silver"].rows == ROWS[sf]
    assert by["gold"].rows > 0 and all(by["gold"].detail["checks"].values())
    assert all(s.peak_rss_mb <= scale.RSS_TARGET_MB for s in stages)
