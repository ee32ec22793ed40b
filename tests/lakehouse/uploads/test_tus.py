"""The resumable upload endpoint through a plain tus client (tuspy) and raw HTTP: a file
arrives in pieces, survives a cut connection, is ingested into bronze; limits, tokens,
expiry and hostile names hold."""

import base64
import hashlib
import io
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError

from lakehouse import Lakehouse, Settings, upload_outcome, upload_token
from lakehouse.uploads.records import FOLDER, UploadRecord
from lakehouse.uploads.service import UploadService
from tests.support.tus_server import client, tus_server, upload_id_of, wait_done


def csv_bytes(rows: int) -> bytes:
    lines = ["id,city,amount"] + [f"{i},city {i % 97},{i * 0.25}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def meta(**values: str) -> str:
    return ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in values.items()
    )


def stored(lake: Lakehouse) -> list[str]:
    return [o.key for o in lake.storage.list_objects(FOLDER)]


def test_tuspy_upload_lands_in_bronze(settings: Settings, tmp_path: Path) -> None:
    data = csv_bytes(40_000)  # ~1 MB in 64 KB PATCHes
    src = tmp_path / "sales.csv"
    src.write_bytes(data)
    launched: list[str] = []

    def launch(s: Settings, dataset: str) -> str:
        launched.append(dataset)
        return "run-1"

    with tus_server(settings, launch=launch) as (url, service):
        uploader = tus.TusClient(url).uploader(
            str(src), chunk_size=64 * 1024, metadata={"filename": "sales.csv", "dataset": "sales"}
        )
        uploader.upload()
        record = wait_done(service, upload_id_of(uploader.url))
    assert isinstance(record, UploadRecord)
    assert (record.state, record.error_message) == ("ingested", None)
    lake = Lakehouse(settings)
    assert lake.sql("SELECT count(*) AS n FROM bronze.sales").to_pylist() == [{"n": 40_000}]
    batch = lake.bronze_batches("sales")[-1]
    assert (batch.batch_id, batch.rows) == (record.batch_id, 40_000)
    assert batch.sha256 == hashlib.sha256(data).hexdigest()
    deadline = time.monotonic() + 10  # the run starts right after the outcome is written
    while upload_outcome(settings, record.id).run_id is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert launched == ["sales"] and upload_outcome(settings, record.id).run_id == "run-1"
    assert upload_outcome(settings, record.id).state == "ingested"
    assert stored(lake) == [f"{FOLDER}{record.id}.json"]  # the bytes live in bronze now


@pytest.mark.s3
def test_s3_upload_goes_up_in_parts(
    s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lakehouse.uploads.store.MIN_PART", 5 * 2**20)  # S3's smallest part
    settings = Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state", **s3_env)  # type: ignore[arg-type]
    data = csv_bytes(500_000)  # ~12 MB: two whole parts and a short last one
    src = tmp_path / "big.csv"
    src.write_bytes(data)
    with tus_server(settings) as (url, service):
        uploader = tus.TusClient(url).uploader(
            str(src), chunk_size=3 * 2**20, metadata={"filename": "big.csv", "dataset": "big"}
        )
        # 6 MB in: one part sent, 1 MB waiting for the next (tuspy leaves upload_chunk untyped)
        uploader.upload_chunk()  # type: ignore[no-untyped-call]
        uploader.upload_chunk()  # type: ignore[no-untyped-call]
        record = service.get(upload_id_of(uploader.url))
        assert len(record.parts) == 1 and service.offset(record) == 6 * 2**20
        uploader.upload()
        record = wait_done(service, upload_id_of(uploader.url))
    assert isinstance(record, UploadRecord) and record.state == "ingested"
    assert len(record.parts) == 3
    lake = Lakehouse(settings)
    assert lake.bronze_batches("big")[-1].sha256 == hashlib.sha256(data).hexdigest()
    assert lake.sql("SELECT count(*) AS n FROM bronze.big").to_pylist() == [{"n": 500_000}]


def test_a_cut_body_keeps_what_arrived_and_resumes(settings: Settings, tmp_path: Path) -> None:
    data = csv_bytes(60_000)
    half = len(data) // 2
    with tus_server(settings) as (url, service), client() as http:
        created = http.post(
            url,
            headers={
                "Upload-Length": str(len(data)),
                "Upload-Metadata": meta(filename="cut.csv", dataset="cut"),
            },
        )
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        # A PATCH whose connection dies after half the bytes, without closing cleanly.
        host, port = location.split("//")[1].split("/")[0].split(":")
        path = "/" + location.split("//")[1].split("/", 1)[1]
        with socket.create_connection((host, int(port))) as raw:
            head = (
                f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            )
            raw.sendall(head.encode() + data[:half])
            time.sleep(0.5)
            # The old request still hangs; a new one takes over from what arrived.
            offset = int(http.head(location).headers["Upload-Offset"])
            assert offset == half
            resumed = http.patch(
                location,
                content=data[offset:],
                headers={
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
        assert resumed.status_code == 204, resumed.text
        assert resumed.headers["Upload-Offset"] == str(len(data))
        record = wait_done(service, upload_id_of(location))
    assert isinstance(record, UploadRecord) and record.state == "ingested"
    batch = Lakehouse(settings).bronze_batches("cut")[-1]
    assert batch.sha256 == hashlib.sha256(data).hexdigest() and batch.rows == 60_000


def test_wrong_offsets_and_types_are_refused(settings: Settings) -> None:
    with tus_server(settings) as (url, _), client() as http:
        location = http.post(
            url,
            headers={"Upload-Length": "10", "Upload-Metadata": meta(filename="a.csv", dataset="a")},
        ).headers["Location"]
        octets = {"Content-Type": "application/offset+octet-stream"}
        assert (
            http.patch(location, content=b"x", headers={"Upload-Offset": "3", **octets}).status_code
            == 409
        )
        assert http.patch(location, content=b"x", headers={"Upload-Offset": "0"}).status_code == 415
        too_many = http.patch(location, content=b"x" * 11, headers={"Upload-Offset": "0", **octets})
        assert too_many.status_code == 413
        assert http.post(url, headers={"Upload-Length": "x"}).status_code == 400
        bare = httpx.post(url, headers={"Upload-Length": "1"})
        assert bare.status_code == 412  # no Tus-Resumable
        options = http.options(url)
        assert options.status_code == 204
        assert set(options.headers["Tus-Extension"].split(",")) >= {
            "creation",
            "termination",
            "expiration",
        }


def test_larger_than_the_limit_is_refused_before_any_byte(tmp_path: Path) -> None:
    settings = Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state", max_upload_mb=1)
    with tus_server(settings) as (url, _), client() as http:
        refused = http.post(
            url,
            headers={
                "Upload-Length": str(2**20 + 1),
                "Upload-Metadata": meta(filename="a.csv", dataset="a"),
            },
        )
        assert refused.status_code == 413 and "1 MB" in refused.text
        assert http.options(url).headers["Tus-Max-Size"] == str(2**20)
    assert stored(Lakehouse(settings)) == []


def test_more_than_the_disk_holds_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        lake_root=tmp_path / "lake", state_dir=tmp_path / "state", max_upload_mb=2**30
    )
    free = __import__("shutil").disk_usage(tmp_path).free
    with tus_server(settings) as (url, _), client() as http:
        refused = http.post(
            url,
            headers={
                "Upload-Length": str(free + 2**30),
                "Upload-Metadata": meta(filename="a.csv", dataset="a"),
            },
        )
    assert refused.status_code == 507 and "GB free" in refused.text
    assert stored(Lakehouse(settings)) == []


@pytest.mark.parametrize(
    ("filename", "dataset", "title"),
    [
        ("../../etc/passwd", "x", "Invalid file name"),
        ("/etc/passwd", "x", "Invalid file name"),
        ("..", "x", "Invalid file name"),
        ("a\\b.csv", "x", "Invalid file name"),
        ("ok.csv", "../bronze", "Invalid dataset name"),
        ("ok.csv", "/abs", "Invalid dataset name"),
        ("ok.csv", "", "Invalid dataset name"),
    ],
)
def test_hostile_names_cannot_leave_the_landing_area(
    tmp_path: Path, filename: str, dataset: str, title: str
) -> None:
    settings = Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state")
    with tus_server(settings) as (url, _), client() as http:
        refused = http.post(
            url,
            headers={
                "Upload-Length": "3",
                "Upload-Metadata": meta(filename=filename, dataset=dataset),
            },
        )
        assert refused.status_code == 400 and refused.text.startswith(title), refused.text
        # Ids that are not ours never reach a storage key.
        for bad in ("..%2F..%2Fbronze", "../x", "0" * 31, "%00"):
            assert http.head(f"{url}{bad}").status_code in (404, 405)
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert not any("passwd" in str(p) or "bronze" in str(p) for p in files), files


def test_metadata_cannot_pick_the_storage_key(tmp_path: Path) -> None:
    """A hostile file name is kept only as the batch's name, never as a path."""
    settings = Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state")
    with tus_server(settings) as (url, service):
        uploader = tus.TusClient(url).uploader(
            file_stream=io.BytesIO(b"a,b\n1,2\n"),
            metadata={"filename": "..evil name;rm -rf.csv", "dataset": "evil"},
        )
        uploader.upload()
        record = wait_done(service, upload_id_of(uploader.url))
    assert isinstance(record, UploadRecord) and record.state == "ingested"
    lake_files = [p for p in (tmp_path / "lake").rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to((tmp_path / "lake").resolve()) for p in lake_files)


def test_a_rejected_file_is_kept_with_its_reason(settings: Settings) -> None:
    with tus_server(settings) as (url, service):
        uploader = tus.TusClient(url).uploader(
            file_stream=io.BytesIO(b"\x00\x01\x02 not a table \xff" * 100),
            metadata={"filename": "broken.csv", "dataset": "broken"},
        )
        uploader.upload()
        record = wait_done(service, upload_id_of(uploader.url))
    assert isinstance(record, UploadRecord) and record.state == "rejected"
    assert record.error_title and record.error_message
    assert record.rejected_to == "landing/_rejected/broken.csv"
    lake = Lakehouse(settings)
    assert lake.storage.exists("landing/_rejected/broken.csv")
    assert lake.storage.exists("landing/_rejected/broken.csv.error.json")
    assert lake.bronze_batches("broken") == []


def test_with_a_password_only_a_token_uploads(tmp_path: Path) -> None:
    settings = Settings(
        lake_root=tmp_path / "lake",
        state_dir=tmp_path / "state",
        app_password="s3cret-enough-pw",
    )
    token = upload_token(settings, "admin")
    assert token is not None
    with tus_server(settings) as (url, service):
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {token}"}):
            with pytest.raises(TusCommunicationError) as refused:
                tus.TusClient(url, headers=headers).uploader(
                    file_stream=io.BytesIO(b"a\n1\n"),
                    metadata={"filename": "a.csv", "dataset": "a"},
                ).upload()
            assert refused.value.status_code == 401
        expired = upload_token(settings, "admin", now=time.time() - 7200)
        with client() as http:
            assert http.options(url).status_code == 204  # capabilities are public
            r = http.post(url, headers={"Upload-Length": "1", "Authorization": f"Bearer {expired}"})
            assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        uploader = tus.TusClient(url, headers={"Authorization": f"Bearer {token}"}).uploader(
            file_stream=io.BytesIO(b"a,b\n1,2\n"), metadata={"filename": "a.csv", "dataset": "a"}
        )
        uploader.upload()
        record = wait_done(service, upload_id_of(uploader.url))
        assert isinstance(record, UploadRecord) and (record.state, record.user) == (
            "ingested",
            "admin",
        )
    assert stored(Lakehouse(settings)) == [f"{FOLDER}{record.id}.json"]


def test_without_a_password_no_token_is_needed_and_none_is_made(tmp_path: Path) -> None:
    settings = Settings(lake_root=tmp_path / "lake", state_dir=tmp_path / "state")
    assert upload_token(settings, "local") is None
    with tus_server(settings) as (url, service):
        uploader = tus.TusClient(url).uploader(
            file_stream=io.BytesIO(b"a,b\n1,2\n"), metadata={"filename": "a.csv", "dataset": "a"}
        )
        uploader.upload()
        assert wait_done(service, upload_id_of(uploader.url)).state == "ingested"


def test_unfinished_uploads_expire_and_are_swept(settings: Settings) -> None:
    with tus_server(settings) as (url, service), client() as http:
        location = http.post(
            url,
            headers={
                "Upload-Length": "100",
                "Upload-Metadata": meta(filename="a.csv", dataset="a"),
            },
        ).headers["Location"]
        http.patch(
            location,
            content=b"a,b\n1,2\n",
            headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        )
        head = http.head(location)
        assert head.headers["Upload-Offset"] == "8" and "GMT" in head.headers["Upload-Expires"]
        assert service.sweep() == 0  # not yet
        later = datetime.now(UTC) + timedelta(hours=settings.upload_expiry_hours, minutes=1)
        assert service.sweep(now=later) == 1
        assert http.head(location).status_code == 404
    assert stored(Lakehouse(settings)) == []


def test_termination_deletes_the_bytes(settings: Settings) -> None:
    with tus_server(settings) as (url, _), client() as http:
        location = http.post(
            url,
            headers={
                "Upload-Length": "100",
                "Upload-Metadata": meta(filename="a.csv", dataset="a"),
            },
        ).headers["Location"]
        assert http.delete(location).status_code == 204
        assert http.head(location).status_code == 404
    assert stored(Lakehouse(settings)) == []


def test_finished_uploads_are_ingested_after_a_restart(settings: Settings) -> None:
    """Every byte arrived, then the service stopped before the ingest ran."""
    service = UploadService(settings)
    record = service.create(8, {"filename": "a.csv", "dataset": "late"}, None)
    with service.store.appender(record) as out:
        out.write(b"a,b\n1,2\n")
    record.state = "ingesting"
    from lakehouse.uploads.records import save

    save(service.storage, record)
    service.close()
    restarted = UploadService(settings)
    assert restarted.resume() == 1
    assert wait_done(restarted, record.id).state == "ingested"
    restarted.close()
