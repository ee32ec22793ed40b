"""One contract, both backends: LocalStorage and S3Storage must behave the same."""

from pathlib import Path

import pytest

from lakehouse import Lakehouse, StorageError
from lakehouse.storage import ObjectNotFound, Storage


@pytest.fixture
def storage(lake: Lakehouse) -> Storage:
    return lake.storage


def test_put_get_roundtrip(storage: Storage, tmp_path) -> None:
    storage.put_bytes("bronze/a/one.bin", b"\x00\x01payload")
    src = tmp_path / "file.bin"
    src.write_bytes(b"x" * 70_000)
    storage.put_file("silver/t/two.bin", src)
    assert storage.get_bytes("bronze/a/one.bin") == b"\x00\x01payload"
    assert storage.get_bytes("silver/t/two.bin") == b"x" * 70_000
    assert src.exists(), "put_file without move keeps the source"
    dest = tmp_path / "down.bin"
    storage.download("silver/t/two.bin", dest)
    assert dest.read_bytes() == b"x" * 70_000


def test_put_file_move_consumes_the_source(storage: Storage, tmp_path) -> None:
    src = tmp_path / "move.bin"
    src.write_bytes(b"moved")
    storage.put_file("gold/t/m.bin", src, move=True)
    assert not src.exists()
    assert storage.get_bytes("gold/t/m.bin") == b"moved"


def test_put_file_link_keeps_the_source_and_copies_nothing_locally(
    storage: Storage, lake: Lakehouse
) -> None:
    # A finished upload lives in the lake's landing area: the same disk as bronze.
    src = lake.settings.lake_root / "landing" / "_uploads" / "u.bin"
    if storage.kind == "local":
        src.parent.mkdir(parents=True, exist_ok=True)
    else:
        src = lake.settings.state_dir / "u.bin"
        src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(b"linked" * 1000)
    storage.put_file("bronze/t/original.csv", src, link=True)
    assert src.exists(), "the caller deletes its own name"
    assert storage.get_bytes("bronze/t/original.csv") == b"linked" * 1000
    if storage.kind == "local":
        assert Path(storage.uri("bronze/t/original.csv")).stat().st_ino == src.stat().st_ino


def test_move_within_and_across_layers(storage: Storage) -> None:
    storage.put_bytes("landing/in/a.csv", b"a,b\n1,2\n")
    storage.move("landing/in/a.csv", "landing/_rejected/a.csv")
    assert not storage.exists("landing/in/a.csv")
    assert storage.get_bytes("landing/_rejected/a.csv") == b"a,b\n1,2\n"
    storage.move("landing/_rejected/a.csv", "bronze/x/a.csv")
    assert [o.key for o in storage.list_objects("landing/")] == []
    assert storage.get_bytes("bronze/x/a.csv") == b"a,b\n1,2\n"
    with pytest.raises(ObjectNotFound):
        storage.move("landing/nope.csv", "landing/_rejected/nope.csv")


def test_overwrite_replaces_whole_object(storage: Storage) -> None:
    storage.put_bytes("gold/t/_current.json", b"old-old-old")
    storage.put_bytes("gold/t/_current.json", b"new")
    assert storage.get_bytes("gold/t/_current.json") == b"new"


def test_missing_object(storage: Storage, tmp_path) -> None:
    assert not storage.exists("bronze/nope/x")
    with pytest.raises(ObjectNotFound):
        storage.get_bytes("bronze/nope/x")
    with pytest.raises(ObjectNotFound):
        storage.download("bronze/nope/x", tmp_path / "x")


def test_list_objects_recursive_sorted_with_sizes(storage: Storage) -> None:
    for key in ["bronze/d/b=2/f", "bronze/d/b=1/f", "bronze/d/b=1/g", "bronze/e/f", "silver/d/f"]:
        storage.put_bytes(key, key.encode())
    objs = list(storage.list_objects("bronze/d/"))
    assert [o.key for o in objs] == ["bronze/d/b=1/f", "bronze/d/b=1/g", "bronze/d/b=2/f"]
    assert all(o.size == len(o.key) for o in objs)
    assert [o.key for o in storage.list_objects("bronze/d/b=1/")] == [
        "bronze/d/b=1/f",
        "bronze/d/b=1/g",
    ]
    assert {o.key for o in storage.list_objects("bronze/")} == {
        "bronze/d/b=2/f",
        "bronze/d/b=1/f",
        "bronze/d/b=1/g",
        "bronze/e/f",
    }


def test_list_dirs(storage: Storage) -> None:
    for key in ["gold/b/x", "gold/a/y/z", "gold/top.json"]:
        storage.put_bytes(key, b"1")
    assert storage.list_dirs("gold/") == ["a", "b"]
    assert storage.list_dirs("gold/a/") == ["y"]
    assert storage.list_dirs("gold/none/") == []


def test_delete_and_delete_prefix(storage: Storage) -> None:
    for key in ["silver/t/s=1/a", "silver/t/s=1/b", "silver/t/s=2/a", "silver/u/a"]:
        storage.put_bytes(key, b"1")
    storage.delete(["silver/t/s=2/a", "silver/t/does-not-exist"])
    assert not storage.exists("silver/t/s=2/a")
    assert storage.delete_prefix("silver/t/") == 2
    assert [o.key for o in storage.list_objects("silver/")] == ["silver/u/a"]
    assert storage.list_dirs("silver/") == ["u"]


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "bronze/../gold/x",
        "bronze/a/../../x",
        "nolayer/x",
        "bronze/",
        "bronze//x",
        "bronze/a\\b",
        "/bronze/x",
        "bronze/a/\x00",
    ],
)
def test_keys_cannot_escape_a_layer(storage: Storage, key: str) -> None:
    """Hostile keys: traversal, absolute paths, unknown layers, empty parts, NUL, backslashes."""
    with pytest.raises(StorageError):
        storage.put_bytes(key, b"x")


def test_uri_is_readable_by_duckdb(lake: Lakehouse, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), path)
    lake.storage.put_file("gold/raw/t.parquet", path)
    con = lake.connect_duckdb()
    uri = lake.storage.uri("gold/raw/t.parquet")
    assert con.execute("SELECT sum(x) FROM read_parquet(?)", [uri]).fetchone() == (6,)
