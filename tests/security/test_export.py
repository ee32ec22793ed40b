"""CSV exports neutralise spreadsheet formulas (issue 13, finding 10); Parquet is unchanged."""

import csv
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lakehouse import Lakehouse, Settings
from tests.report import Record

# (text cell as stored, as a spreadsheet-safe CSV writes it)
CELLS = [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("-5", "-5"),  # a number written as text is not a formula
    ("+1.5e3", "+1.5e3"),
    ("plain = text", "plain = text"),
    ("", ""),
]


def make_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: object) -> Lakehouse:
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    settings = Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state", **extra)  # type: ignore[arg-type]
    lake = Lakehouse(settings)
    lake.ingest(_csv(tmp_path), dataset="cells")
    return lake


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "cells.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "neg", "txt"])
        for i, (text, _expected) in enumerate(CELLS):
            w.writerow([i, -i - 1, text])
    return path


SQL = "SELECT id, neg, txt, [txt] AS nested FROM bronze.cells ORDER BY id"


def read_back(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_export_prefixes_formula_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    with make_lake(tmp_path, monkeypatch) as lake:
        out = tmp_path / "out.csv"
        assert lake.export(SQL, out).rows == len(CELLS)
        got = read_back(out)
        assert [r["txt"] for r in got] == [want for _, want in CELLS]
        assert [r["neg"] for r in got] == [str(-i - 1) for i in range(len(CELLS))], "numbers stay"
        assert got[0]["nested"].startswith("["), "nested values keep their text form"
        parquet = tmp_path / "out.parquet"
        lake.export(SQL, parquet)
        assert pq.read_table(parquet).column("txt").to_pylist() == [t or None for t, _ in CELLS]
    record(
        "CSV export of cells = + - @ tab CR, numbers as text, negative numbers",
        "formula cells prefixed with '; numbers and Parquet unchanged",
        f"{len(CELLS)} cells",
    )


def test_the_setting_turns_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    with make_lake(tmp_path, monkeypatch, export_csv_safe=False) as lake:
        out = tmp_path / "raw.csv"
        lake.export(SQL, out)
        assert [r["txt"] for r in read_back(out)] == [t for t, _ in CELLS]
    record("RATATOUILLE_EXPORT_CSV_SAFE=false", "cells written unchanged")
