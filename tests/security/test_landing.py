"""Landing takes regular files only: links, FIFOs, folders and hard links are refused unread,
and their error reports never quote bytes of a file outside the lake (issue 13, finding 4)."""

import json
import os
import time
from pathlib import Path

import pytest

from lakehouse import IngestError, Lakehouse, Settings
from lakehouse.ingest import landing
from tests.report import Record

SECRET = b"id,token\n1,TOPSECRET-4711\n"
# Not a table: a rejected parse would quote the line with the secret in it.
JUNK_SECRET = b'a,b\n1,"TOPSECRET-4711\n\xff\xfe\x00 broken'


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lakehouse:
    for key in list(os.environ):
        if key.startswith("RATATOUILLE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return Lakehouse(Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state"))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the lake holding a file the landing writer must not get at."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.csv").write_bytes(SECRET)
    (folder / "junk.csv").write_bytes(JUNK_SECRET)
    return folder


def landing_path(lake: Lakehouse, rel: str) -> Path:
    path = Path(lake.storage.uri(f"landing/{rel}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def settle(path: Path) -> None:
    t = time.time() - 60
    os.utime(path, (t, t), follow_symlinks=False)


def refused(lake: Lakehouse, key: str) -> dict[str, object]:
    """Ingest `key`, expect a refusal with nothing in bronze; the error report."""
    with pytest.raises(IngestError) as e:
        landing.ingest_file(lake.settings, lake.storage, key, "run-1")
    assert e.value.title == "Not a regular file", e.value.msg
    assert lake.tables("bronze") == []
    report_key = key.replace("landing/", "landing/_rejected/", 1) + ".error.json"
    raw = lake.storage.get_bytes(report_key)
    assert b"TOPSECRET" not in raw
    assert b"outside" not in raw, "the report names no path outside the lake"
    report: dict[str, object] = json.loads(raw)
    assert report["title"] == "Not a regular file"
    return report


@pytest.mark.parametrize("target", ["secret.csv", "junk.csv"])
def test_symlink_to_a_file_outside_is_refused_unread(
    lake: Lakehouse, outside: Path, target: str, record: Record
) -> None:
    """A parseable target would be ingested; a broken one would be quoted in the report."""
    link = landing_path(lake, "stolen.csv")
    link.symlink_to(outside / target)
    ready, _ = landing.pending(lake.storage, settle_s=0)
    assert [f.key for f in ready] == ["landing/stolen.csv"]  # the sensor would pick it up
    refused(lake, "landing/stolen.csv")
    moved = Path(lake.storage.uri("landing/_rejected/stolen.csv"))
    assert moved.is_symlink() and not os.path.lexists(link)
    assert (outside / target).read_bytes() in (SECRET, JUNK_SECRET), "target untouched"
    assert all(b"TOPSECRET" not in json.dumps(r).encode() for r in landing.rejected(lake.storage))
    record(
        f"landing/stolen.csv → symlink to a {target} outside the lake",
        "refused unread; nothing in bronze; link moved to _rejected; report quotes no byte",
    )


def test_symlink_to_a_folder_and_a_linked_dataset_folder(
    lake: Lakehouse, outside: Path, record: Record
) -> None:
    landing_path(lake, "dir.csv").symlink_to(outside)
    refused(lake, "landing/dir.csv")
    # landing/<dataset>/ itself a link: the file below it is outside the lake.
    os.symlink(outside, landing_path(lake, "orders"))
    ready, _ = landing.pending(lake.storage, settle_s=0)
    assert ready == [], "a linked folder is not walked"
    with pytest.raises(IngestError, match="not a plain folder"):
        landing.ingest_file(lake.settings, lake.storage, "landing/orders/secret.csv")
    assert lake.tables("bronze") == []
    record(
        "symlink to a folder as a landing file; dataset folder that is a symlink",
        "both refused; the linked folder is not listed; nothing ingested",
    )


@pytest.mark.timeout(20)
def test_fifo_is_refused_without_blocking(lake: Lakehouse, record: Record) -> None:
    fifo = landing_path(lake, "pipe.csv")
    os.mkfifo(fifo)
    started = time.monotonic()
    refused(lake, "landing/pipe.csv")
    elapsed = time.monotonic() - started
    assert Path(lake.storage.uri("landing/_rejected/pipe.csv")).is_fifo()
    record("a FIFO named pipe.csv in landing", "refused at once, never opened", f"{elapsed:.3f} s")


def test_hard_link_is_refused(lake: Lakehouse, outside: Path, record: Record) -> None:
    os.link(outside / "secret.csv", landing_path(lake, "hard.csv"))
    refused(lake, "landing/hard.csv")
    record("a hard link to a file outside the lake", "refused: a second name is not a drop")


def test_link_swapped_in_after_listing(lake: Lakehouse, outside: Path, record: Record) -> None:
    path = landing_path(lake, "swap.csv")
    path.write_bytes(b"a\n1\n")
    settle(path)
    ready, _ = landing.pending(lake.storage, settle_s=5)
    assert [f.key for f in ready] == ["landing/swap.csv"]
    path.unlink()
    path.symlink_to(outside / "secret.csv")
    refused(lake, "landing/swap.csv")
    record("file listed, then replaced by a link before ingest", "refused at ingest")


def test_link_swapped_in_between_check_and_open(
    lake: Lakehouse, outside: Path, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    """The race itself: the name becomes a link right after it was checked as a file."""
    path = landing_path(lake, "race.csv")
    path.write_bytes(b"a\n1\n")
    check = landing._check_regular
    swapped: list[str] = []

    def check_then_swap(key: str, st: os.stat_result) -> None:
        check(key, st)
        if not swapped:
            swapped.append(key)
            path.unlink()
            path.symlink_to(outside / "secret.csv")

    monkeypatch.setattr(landing, "_check_regular", check_then_swap)
    refused(lake, "landing/race.csv")
    assert swapped == ["landing/race.csv"]
    record("regular file checked, then swapped for a link before open", "O_NOFOLLOW refused it")


def test_regular_files_still_land(lake: Lakehouse, record: Record) -> None:
    path = landing_path(lake, "orders/jan.csv")
    path.write_bytes(b"id\n1\n2\n")
    result = landing.ingest_file(lake.settings, lake.storage, "landing/orders/jan.csv")
    assert (result.dataset, result.rows) == ("orders", 2)
    assert not path.exists()
    record("a regular file in a dataset folder", "ingested from the opened descriptor, removed")


@pytest.mark.parametrize(
    "key", ["landing/../bronze.csv", "landing/a/../../x.csv", "landing/..\\x.csv", "landing/."]
)
@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_keys_cannot_point_outside_landing(
    backend: str, key: str, tmp_path: Path, request: pytest.FixtureRequest, record: Record
) -> None:
    """Keys come from listings, but also from run config: a traversal is no landing file."""
    values: dict[str, object] = {"lake_root": tmp_path / "lake", "state_dir": tmp_path / "state"}
    if backend == "s3":
        values.update(request.getfixturevalue("s3_env"))
    lake = Lakehouse(Settings(**values))  # type: ignore[arg-type]
    with pytest.raises(IngestError, match="not a file in the landing zone"):
        landing.ingest_file(lake.settings, lake.storage, key)
    record(f"{backend}: ingest_file({key!r})", "refused before any read")


def test_cli_ingest_of_a_link_is_unaffected(
    lake: Lakehouse, outside: Path, tmp_path: Path, record: Record
) -> None:
    """`ratatouille ingest` runs as a trusted user on their own files, links included."""
    link = tmp_path / "mine.csv"
    link.symlink_to(outside / "secret.csv")
    assert lake.ingest(link).rows == 1
    record("CLI ingest of a symlink the trusted user points at", "ingested as before")
