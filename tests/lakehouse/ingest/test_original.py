"""The original bytes kept in bronze and their sha256: large files, a caller's hash, failures."""

import gzip
import hashlib
import io
from pathlib import Path

import pytest

from lakehouse import IngestError, Lakehouse, StorageError
from lakehouse.ingest import load
from lakehouse.ingest.original import Keeper, copy_and_hash
from lakehouse.ingest.stream import CHUNK

LOCAL = pytest.mark.parametrize("settings", ["local"], indirect=True)


def csv_bytes(rows: int) -> bytes:
    body = "".join(f"{i},name {i},{i * 0.25},2024-01-{i % 28 + 1:02d}\n" for i in range(rows))
    return ("id,name,price,day\n" + body).encode()


def big_csv() -> bytes:
    """About 2.5 read blocks, not a multiple of one: the last block is a partial one."""
    data = csv_bytes(260_000)
    assert len(data) > 2 * CHUNK and len(data) % CHUNK
    return data


def keys(lake: Lakehouse) -> list[str]:
    return [o.key for o in lake.storage.list_objects("bronze/")]


def staging_is_empty(lake: Lakehouse) -> bool:
    staging = lake.settings.state_dir / "staging"
    return not staging.exists() or not any(staging.iterdir())


@pytest.mark.parametrize("how", ["path", "stream", "owned"])
def test_sha256_of_a_file_larger_than_the_read_block(
    lake: Lakehouse, tmp_path: Path, how: str
) -> None:
    """Each way in hashes differently (kernel copy then hash, spool, hash in place): all agree
    with hashlib over the whole file, and bronze keeps exactly those bytes."""
    data = big_csv()
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    if how == "stream":
        r = lake.ingest(io.BytesIO(data), filename="big.csv")
    elif how == "owned":
        r = load.ingest(lake.settings, lake.storage, path, owned=True)
    else:
        r = lake.ingest(path)
    m = r.manifest
    assert (m.sha256, m.source_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
    assert lake.storage.get_bytes(m.original_key) == data
    assert r.rows == 260_000
    assert path.read_bytes() == data  # the user's file stays as it was
    assert staging_is_empty(lake)


def test_a_callers_sha256_is_recorded_as_given(lake: Lakehouse, tmp_path: Path) -> None:
    """An upload hashed while it was received is not read again for its hash."""
    data = csv_bytes(1_000)
    path = tmp_path / "upload.csv"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    m = load.ingest(lake.settings, lake.storage, path, owned=True, sha256=digest).manifest
    assert (m.sha256, m.source_bytes) == (digest, len(data))
    assert lake.storage.get_bytes(m.original_key) == data


@LOCAL
def test_a_callers_sha256_that_does_not_match_is_refused(lake: Lakehouse, tmp_path: Path) -> None:
    """A compressed file is read anyway (to decompress it): a hash that differs is refused."""
    path = tmp_path / "upload.csv.gz"
    path.write_bytes(gzip.compress(csv_bytes(1_000)))
    with pytest.raises(IngestError) as info:
        load.ingest(lake.settings, lake.storage, path, owned=True, sha256="0" * 64)
    assert info.value.title == "File changed"
    assert keys(lake) == []
    assert staging_is_empty(lake)


@LOCAL
@pytest.mark.parametrize(
    ("sha256", "owned", "stream"),
    [
        ("0" * 63, True, False),
        ("A" * 64, True, False),
        ("0" * 64, False, False),
        ("0" * 64, True, True),
    ],
    ids=["short", "upper-case", "not-owned", "stream"],
)
def test_a_callers_sha256_only_for_an_owned_path(
    lake: Lakehouse, tmp_path: Path, sha256: str, owned: bool, stream: bool
) -> None:
    """A user's file may change after it was hashed, and a stream is hashed as it is spooled."""
    path = tmp_path / "f.csv"
    path.write_bytes(csv_bytes(10))
    source = io.BytesIO(path.read_bytes()) if stream else path
    with pytest.raises(ValueError, match="sha256"):
        load.ingest(lake.settings, lake.storage, source, owned=owned, sha256=sha256)
    assert keys(lake) == []


def test_a_failure_mid_ingest_leaves_nothing(lake: Lakehouse, tmp_path: Path) -> None:
    """The last row is ragged: DuckDB fails after the copy of the original has started (or
    finished) beside it; neither the copy nor the half-written Parquet is left anywhere."""
    data = big_csv() + b"1,2,3,4,5\n"
    path = tmp_path / "late.csv"
    path.write_bytes(data)
    with pytest.raises(IngestError) as info:
        lake.ingest(path)
    assert info.value.title == "Ragged rows"
    assert keys(lake) == []
    assert staging_is_empty(lake)
    assert path.read_bytes() == data


def test_copy_and_hash_keeps_and_hashes_the_same_bytes(tmp_path: Path) -> None:
    data = big_csv()
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.write_bytes(data)
    result = copy_and_hash(src, dest, limit=len(data))
    assert (result.sha256, result.raw_bytes) == (hashlib.sha256(data).hexdigest(), len(data))
    assert dest.read_bytes() == data
    assert copy_and_hash(src, None, limit=len(data)) == result  # hashed in place


def test_copy_and_hash_refuses_a_file_past_the_limit(tmp_path: Path) -> None:
    """A file that grew past the limit after the size check is still refused."""
    src = tmp_path / "src"
    src.write_bytes(big_csv())
    with pytest.raises(IngestError) as info:
        copy_and_hash(src, tmp_path / "dest", limit=CHUNK)
    assert info.value.title == "File too large"


def test_a_copy_that_fails_is_reported_in_the_callers_thread(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"a\n1\n")
    keeper = Keeper(src, tmp_path / "no such folder" / "original", limit=2**20)
    with pytest.raises(StorageError, match="Could not copy the file") as info:
        keeper.result()
    assert isinstance(info.value.__cause__, FileNotFoundError)
