"""Staging folders of a process killed mid-work are swept; a live one's never are."""

import subprocess
import sys
import time
from pathlib import Path

from lakehouse import Settings
from lakehouse.storage import staging

HOLD = """
import sys, time
from pathlib import Path
from lakehouse import Settings
from lakehouse.storage import staging
settings = Settings(lake_root=Path(sys.argv[1]) / "lake", state_dir=Path(sys.argv[1]) / "state")
with staging.folder(settings, sys.argv[2]) as work:
    (work / "big.part").write_bytes(b"x" * 1000)
    print("ready", flush=True)
    time.sleep(600)
"""


def hold(tmp_path: Path, name: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), name], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_killed_owners_folder_is_swept_a_live_ones_kept(tmp_path: Path) -> None:
    settings = Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state")
    killed, live = hold(tmp_path, "batch-killed"), hold(tmp_path, "batch-live")
    try:
        killed.kill()
        killed.wait()
        base = staging.root(settings)
        assert (base / "batch-killed" / "big.part").exists()
        assert staging.sweep(settings) == 1
        assert not (base / "batch-killed").exists() and not (base / "batch-killed.lock").exists()
        assert (base / "batch-live" / "big.part").exists()
    finally:
        live.kill()
        live.wait()


def test_the_folder_goes_when_the_work_ends_or_fails(tmp_path: Path) -> None:
    settings = Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state")
    try:
        with staging.folder(settings, "x") as work:
            (work / "f").write_text("data")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(staging.root(settings).iterdir()) == []


def test_unlocked_leftovers_go_only_when_old(tmp_path: Path) -> None:
    import os

    settings = Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state")
    base = staging.root(settings)
    old, young = base / "20200101T000000000000Z-aaaaaa", base / "fresh"
    for folder in (old, young):
        folder.mkdir(parents=True)
    then = time.time() - 2 * 24 * 3600
    os.utime(old, (then, then))
    assert staging.sweep(settings) == 1
    assert not old.exists() and young.exists()
