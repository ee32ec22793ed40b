"""Bad input: an IngestError with a title and a message naming the problem, and no trace left."""

import gzip
import io
import random
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import zstandard

from lakehouse import IngestError, Lakehouse

# Parsing does not depend on the backend: these run on local storage only (the suite stays
# fast); tests where storage matters (layout, append/replace, originals, cleanup) run on both.
LOCAL = pytest.mark.parametrize("settings", ["local"], indirect=True)


def keys(lake: Lakehouse) -> list[str]:
    return [o.key for o in lake.storage.list_objects("bronze/")]


def fails(
    lake: Lakehouse, tmp_path: Path, name: str, data: bytes, stream: bool = False, **kw: object
) -> IngestError:
    """Ingest must raise; afterwards storage holds exactly what it held before, staging nothing."""
    before = keys(lake)
    with pytest.raises(IngestError) as info:
        if stream:
            lake.ingest(io.BytesIO(data), filename=name, **kw)  # type: ignore[arg-type]
        else:
            path = tmp_path / "in" / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            lake.ingest(path, **kw)  # type: ignore[arg-type]
    assert keys(lake) == before
    staging = lake.settings.state_dir / "staging"
    assert not staging.exists() or not any(staging.iterdir())
    return info.value


def lines(n: int, row: Callable[[int], str]) -> str:
    return "".join(row(i) + "\n" for i in range(1, n + 1))


def parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"a": list(range(5000)), "s": [f"v{i}" for i in range(5000)]}), buf)
    return buf.getvalue()


def arrow_stream_bytes() -> bytes:
    t = pa.table({"a": list(range(1000))})
    buf = io.BytesIO()
    with ipc.new_stream(buf, t.schema) as w:
        for i in range(10):
            w.write_table(t.slice(i * 100, 100))
    return buf.getvalue()


def zip_bytes(member: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(member, "a,b\n1,2\n")
    return buf.getvalue()


BIG_CSV = ("a,b\n" + lines(100_000, lambda i: f"{i},{i * 7}")).encode()
GZ = gzip.compress(BIG_CSV)
ZST = zstandard.ZstdCompressor().compress(BIG_CSV)
PARQUET = parquet_bytes()
ARROW_STREAM = arrow_stream_bytes()
UTF8_THEN_FF = (
    "id,text\n" + lines(29_999, lambda i: f"{i},naïve {i}")
).encode() + b"30000,bad\xff\n"

# (file name, content, title regex, regexes the message must match)
CASES = {
    "empty": ("e.csv", b"", "Empty file", ["empty", "0 bytes"]),
    "header-only": ("h.csv", b"id,name,price\n", "No data rows", ["no data rows"]),
    "header-only-crlf": ("h.csv", b"id,name\r\n", "No data rows", ["no data rows"]),
    "gzip-of-nothing": ("e.csv.gz", gzip.compress(b""), "Empty file", ["decompresses to nothing"]),
    "binary-junk": ("j.csv", random.Random(0).randbytes(65536), "Not a text file", ["binary"]),
    "png": ("p.csv", b"\x89PNG\r\n\x1a\n" + bytes(64), "Unsupported file type", ["PNG"]),
    "pdf": ("r.pdf", b"%PDF-1.7\n%\xe2\xe3\n1 0 obj", "Unsupported file type", ["PDF"]),
    "xls": (
        "o.xls",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64),
        "Unsupported file type",
        [r"\.xls", "xlsx"],
    ),
    "zip": ("d.zip", zip_bytes("x.csv"), "Unsupported file type", ["ZIP", "[Uu]nzip"]),
    "zip-named-csv": ("d.csv", zip_bytes("x.csv"), "Unsupported file type", ["ZIP"]),
    "ragged-missing-field-deep": (
        "r.csv",
        ("a,b,c\n" + lines(9_999, lambda i: f"{i},{i},x") + "10000,oops\n").encode(),
        "Ragged rows",
        ["Line 10001", "2 fields", "header has 3", "10000,oops"],
    ),
    "ragged-extra-field-beyond-sample": (
        "r.csv",
        ("a,b,c\n" + lines(24_999, lambda i: f"{i},{i},x") + "1,2,3,4\n").encode(),
        "Ragged rows",
        ["Line 25001", "4 fields", "header has 3"],
    ),
    "undecodable-line-30001": (
        "u.csv",
        UTF8_THEN_FF,
        "Undecodable bytes",
        ["Line 30001", "ff", "UTF-8"],
    ),
    "truncated-gzip": (
        "t.csv.gz",
        GZ[: len(GZ) // 2],
        "Corrupt compressed file",
        ["gzip", "truncated"],
    ),
    "corrupt-parquet": (
        "c.parquet",
        PARQUET[: len(PARQUET) // 2],
        "(Could not read this|Unreadable) .*",
        ["magic bytes"],
    ),
    "parquet-magic-garbage": (
        "c.parquet",
        b"PAR1" + random.Random(1).randbytes(2048) + b"PAR1",
        "(Could not read this|Unreadable) .*",
        ["[Ff]ooter"],
    ),
    "text-named-parquet": (
        "c.parquet",
        b"a,b\n1,2\n",
        "File content does not match its name",
        [r"\.parquet"],
    ),
    "json-syntax": (
        "s.json",
        b'[{"a": 1},\n{"a": 2\n',
        "Could not read this .*JSON.*",
        ["Malformed JSON"],
    ),
    "ndjson-syntax": (
        "s.ndjson",
        b'{"a": 1}\n{"a": 2}\n{"a" 3}\n{"a": 4}\n',
        "Could not read this .*JSON.*",
        ["Malformed JSON", "unexpected character"],
    ),
    "truncated-arrow-file": (
        "t.arrow",
        b"ARROW1\x00\x00" + bytes(100),
        "Unreadable Arrow file",
        ["Arrow"],
    ),
    "truncated-arrow-stream": (
        "t.arrows",
        ARROW_STREAM[: len(ARROW_STREAM) // 2],
        "(Could not read this|Unreadable) .*",
        ["read .* bytes"],
    ),
    "zip-named-xlsx": (
        "x.xlsx",
        zip_bytes("word/document.xml"),
        "(Could not read this|Unreadable) .*",
        ["xlsx"],
    ),
}


@LOCAL
@pytest.mark.parametrize("stream", [False, True], ids=["path", "stream"])
@pytest.mark.parametrize(("name", "data", "title", "says"), CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_cleanly(
    lake: Lakehouse,
    tmp_path: Path,
    name: str,
    data: bytes,
    title: str,
    says: list[str],
    stream: bool,
) -> None:
    """Each way a real upload goes wrong, by path and by stream: explained, and nothing kept."""
    e = fails(lake, tmp_path, name, data, stream=stream)
    assert re.fullmatch(title, e.title), e
    for pattern in says:
        assert re.search(pattern, e.msg, re.IGNORECASE if pattern.islower() else 0), e


# -- edge cases that once lost data or misreported it ------------------------------------


@LOCAL
@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"a,b,c\n1,2,3\n4,5,6,7\n7,8,9\n", "Line 3"),
        (b"a;b;c\n1;2;3\n4;5\n7;8;9\n", "Line 3"),
        (
            ("a,b,c\n" + lines(50, lambda i: f"{i},{i},{i}") + "4,5,6,7\n").encode()
            + lines(5_000, lambda i: f"{i},{i},{i}").encode(),
            "Line 52",
        ),
    ],
    ids=["extra-field-line-3", "missing-field-line-3-semicolon", "extra-field-line-52"],
)
def test_ragged_row_early_in_file(lake: Lakehouse, tmp_path: Path, data: bytes, line: str) -> None:
    """Ragged rows near the top are the common case (a stray delimiter in a note field)."""
    e = fails(lake, tmp_path, "r.csv", data)
    assert (e.title, line in e.msg) == ("Ragged rows", True), e


@LOCAL
def test_ragged_row_line_counts_physical_lines(lake: Lakehouse, tmp_path: Path) -> None:
    """DuckDB counts records; users count lines (a quoted field may span several)."""
    data = 'a,b,c\n1,"two\nlines",x\n' + lines(9_998, lambda i: f"{i},{i},x") + "oops,1\n"
    e = fails(lake, tmp_path, "r.csv", data.encode())  # the bad row is on line 10002
    assert "Line 10002" in e.msg, e


@LOCAL
def test_ndjson_syntax_error_names_its_line(lake: Lakehouse, tmp_path: Path) -> None:
    """DuckDB names the line after the bad one."""
    e = fails(lake, tmp_path, "s.ndjson", b'{"a": 1}\n{"a": 2}\n{"a" 3}\n{"a": 4}\n')
    assert re.search(r"\bline 3\b", e.msg), e


@LOCAL
def test_ragged_row_message_quotes_the_row_in_crlf_files(lake: Lakehouse, tmp_path: Path) -> None:
    data = "a,b,c\r\n" + lines(9_999, lambda i: f"{i},{i},x").replace("\n", "\r\n") + "oops,1\r\n"
    e = fails(lake, tmp_path, "r.csv", data.encode())
    assert ("Line 10001" in e.msg, "oops,1" in e.msg) == (True, True), e


@LOCAL
@pytest.mark.parametrize(
    "data",
    [b"   \n\n  \t\n", b"\r\n\r\n", b"\n\n\n", b"  \n  \n"],
    ids=["mixed", "crlf", "newlines", "spaces"],
)
def test_whitespace_only(lake: Lakehouse, tmp_path: Path, data: bytes) -> None:
    """Blank exports: spaces, tabs, and newlines of either kind, no header, no data."""
    e = fails(lake, tmp_path, "w.csv", data)
    assert e.title in ("Empty file", "No data rows"), e


@LOCAL
@pytest.mark.parametrize("cut", [len(ZST) // 2, len(ZST) - 20], ids=["half", "last-20-bytes"])
def test_truncated_zstd(lake: Lakehouse, tmp_path: Path, cut: int) -> None:
    """Cut mid-stream and just before the end (an interrupted download)."""
    e = fails(lake, tmp_path, "t.csv.zst", ZST[:cut])
    assert e.title == "Corrupt compressed file", e


@LOCAL
@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("c.parquet", PARQUET[: len(PARQUET) // 2], "PARQUET"),
        ("s.json", b'[{"a": 1},\n{"a": 2\n', "JSON"),
        ("x.xlsx", zip_bytes("word/document.xml"), "XLSX"),
        pytest.param(
            "t.arrows",
            ARROW_STREAM[: len(ARROW_STREAM) // 2],
            "ARROW",
        ),
    ],
    ids=["parquet", "json", "xlsx", "arrow-stream"],
)
def test_unreadable_file_title_names_the_format(
    lake: Lakehouse, tmp_path: Path, name: str, data: bytes, fmt: str
) -> None:
    """Every DuckDB-read format goes through the same translation of the error."""
    assert fails(lake, tmp_path, name, data).title == f"Could not read this {fmt} file"


@LOCAL
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("c.parquet", PARQUET[: len(PARQUET) // 2]),
        pytest.param(
            "s.json",
            b'[{"a": 1},\n{"a": 2\n',
        ),
    ],
    ids=["parquet", "json"],
)
def test_error_message_has_no_sql(lake: Lakehouse, tmp_path: Path, name: str, data: bytes) -> None:
    """Messages are for people; the SQL that failed is internal."""
    e = fails(lake, tmp_path, name, data, stream=True)
    assert not re.search(r"SELECT|LINE 1:|staging", e.msg), e


# -- limits, names, modes -------------------------------------------------------------------


@pytest.fixture
def small_lake(lake: Lakehouse) -> Lakehouse:
    return Lakehouse(lake.settings.replace(max_ingest_mb=1), lake.storage)


@pytest.mark.parametrize("stream", [False, True], ids=["path", "stream"])
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("big.csv", b"a,b\n" + b"12345,67890\n" * 200_000),  # 2.3 MB
        ("bomb.csv.gz", gzip.compress(b"a,b\n" + b"0,0\n" * 750_000)),  # 3 MB in 9 KB
    ],
    ids=["plain", "gzip-bomb"],
)
def test_file_over_the_size_limit(
    small_lake: Lakehouse, tmp_path: Path, name: str, data: bytes, stream: bool
) -> None:
    """The limit holds for the bytes sent and for what they decompress to."""
    e = fails(small_lake, tmp_path, name, data, stream=stream)
    assert e.title == "File too large"
    assert "1 MB" in e.msg and "RATATOUILLE_MAX_INGEST_MB" in e.msg


@LOCAL
def test_size_limit_message_states_a_size_above_the_limit(
    small_lake: Lakehouse, tmp_path: Path
) -> None:
    e = fails(small_lake, tmp_path, "big.csv", b"a,b\n" + b"12345,67890\n" * 170_000)  # 1.9 MB
    stated = re.search(r"is ([\d.,]+) MB", e.msg)
    assert stated and float(stated.group(1)) > 1, e


def test_a_file_just_under_the_limit_is_fine(small_lake: Lakehouse) -> None:
    data = b"a,b\n" + b"12345,67890\n" * 80_000  # 0.9 MB
    assert small_lake.ingest(io.BytesIO(gzip.compress(data)), filename="ok.csv.gz").rows == 80_000


@LOCAL
def test_missing_file(lake: Lakehouse, tmp_path: Path) -> None:
    for missing in (tmp_path / "nope.csv", tmp_path):
        with pytest.raises(IngestError) as info:
            lake.ingest(missing)
        assert info.value.title == "File not found"
    assert keys(lake) == []


@LOCAL
@pytest.mark.parametrize(
    "dataset",
    [
        "../x",
        "a/b",
        "Bad Name",
        "select",
        "1abc",
        "x" * 64,
        pytest.param(
            "",
        ),
    ],
)
def test_invalid_explicit_dataset_name(lake: Lakehouse, tmp_path: Path, dataset: str) -> None:
    """Path escapes, upper case and spaces, keywords, a leading digit, too long, empty."""
    e = fails(lake, tmp_path, "ok.csv", b"a\n1\n", dataset=dataset)
    assert e.title == "Invalid dataset name"
    assert repr(dataset) in e.msg


@LOCAL
def test_invalid_mode(lake: Lakehouse, tmp_path: Path) -> None:
    e = fails(lake, tmp_path, "ok.csv", b"a\n1\n", mode="upsert")
    assert (e.title, "'upsert'" in e.msg) == ("Invalid mode", True)


@pytest.mark.parametrize("mode", ["append", "replace"])
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("good.csv", ("id,v\n" + lines(25_000, lambda i: f"{i},x") + "oops\n").encode()),
        ("good.csv", UTF8_THEN_FF),
        ("good.csv.gz", GZ[: len(GZ) // 2]),
        ("good.csv", b"id,v\n"),
    ],
    ids=["ragged", "undecodable", "truncated-gzip", "header-only"],
)
def test_failed_ingest_keeps_the_earlier_batch(
    lake: Lakehouse, tmp_path: Path, mode: str, name: str, data: bytes
) -> None:
    """A failure late in the pipeline must neither add a batch nor (in replace) drop one."""
    first = lake.ingest(io.BytesIO(b"id,v\n1,a\n2,b\n"), filename="good.csv")
    fails(lake, tmp_path, name, data, dataset="good", mode=mode)
    assert lake.table("bronze", "good").snapshot_id == first.manifest.batch_id
    assert lake.sql("SELECT * FROM bronze.good ORDER BY id").to_pylist() == [
        {"id": 1, "v": "a"},
        {"id": 2, "v": "b"},
    ]
