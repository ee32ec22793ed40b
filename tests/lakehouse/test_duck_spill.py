"""Spill files: DuckDB names them the same in every instance, so each connection needs its own
folder, or two processes spilling at once corrupt each other's data."""

import os
import threading
import time
from pathlib import Path

from lakehouse import Settings, duck

SQL = "SELECT s FROM (SELECT md5(i::VARCHAR) AS s FROM range(1500000) t(i)) ORDER BY s"


def test_connections_spill_side_by_side(tmp_path: Path) -> None:
    settings = Settings(
        lake_root=tmp_path / "lake",
        state_dir=tmp_path / "state",
        duckdb_memory_limit="48MB",
        duckdb_threads=1,
    )
    cons = [duck.connect(settings) for _ in range(2)]
    results: list[list[str]] = [[], []]
    folders: set[str] = set()

    def run(i: int) -> None:
        results[i] = cons[i].execute(SQL).to_arrow_table()["s"].to_pylist()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        folders |= {p.name for p in (settings.state_dir / "duckdb_tmp").iterdir()}
        time.sleep(0.05)
    expected = sorted(results[0])
    assert len(expected) == 1_500_000
    assert results[0] == expected and results[1] == expected
    assert len(folders) == 2, "both spilled, each into its own folder"
    for con in cons:
        con.close()
    assert not list((settings.state_dir / "duckdb_tmp").iterdir())


def test_spill_left_by_a_dead_process_is_swept(tmp_path: Path) -> None:
    root = tmp_path / "state" / "duckdb_tmp"
    dead, live, young = root / "999999999-a", root / f"{os.getpid()}-b", root / "999999998-c"
    for folder in (dead, live, young):
        folder.mkdir(parents=True)
        (folder / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"x")
    old = time.time() - 2 * 3600
    for folder in (dead, live):
        os.utime(folder / "duckdb_temp_storage_DEFAULT-0.tmp", (old, old))
        os.utime(folder, (old, old))
    duck.connect(Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state")).close()
    assert not dead.exists()
    assert live.exists() and young.exists()
