"""The landing drop zone: which files are ready, ingest once, reject with a report."""

import hashlib
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from lakehouse import IngestError, Lakehouse
from lakehouse.ingest import landing


def drop(lake: Lakehouse, key: str, data: bytes, age_s: float = 60) -> None:
    lake.storage.put_bytes(key, data)
    if lake.storage.kind == "local":  # make it look settled (or not)
        path = lake.storage.uri(key)
        t = time.time() - age_s
        os.utime(path, (t, t))


def test_pending_skips_partial_hidden_rejected_and_young_files(lake: Lakehouse) -> None:
    drop(lake, "landing/sales.csv", b"a\n1\n")
    drop(lake, "landing/orders/part1.csv", b"a\n1\n")
    drop(lake, "landing/big.csv.part", b"a\n")
    drop(lake, "landing/.hidden.csv", b"a\n")
    drop(lake, "landing/_rejected/old.csv", b"a\n")
    drop(lake, "landing/a/b/too_deep.csv", b"a\n")
    drop(lake, "landing/fresh.csv", b"a\n", age_s=0)
    ready, settling = landing.pending(lake.storage, settle_s=5)
    keys = sorted(f.key for f in ready)
    if lake.storage.kind == "local":
        assert keys == ["landing/orders/part1.csv", "landing/sales.csv"]
        assert [f.key for f in settling] == ["landing/fresh.csv"]
    else:  # an S3 object is complete once listed
        assert keys == ["landing/fresh.csv", "landing/orders/part1.csv", "landing/sales.csv"]
    by_key = {f.key: f for f in ready}
    assert by_key["landing/orders/part1.csv"].dataset == "orders"
    assert by_key["landing/sales.csv"].dataset is None


def test_ingest_removes_the_file_and_keeps_the_original_in_bronze(lake: Lakehouse) -> None:
    drop(lake, "landing/orders/jan.csv", b"id,v\n1,a\n2,b\n")
    result = landing.ingest_file(lake.settings, lake.storage, "landing/orders/jan.csv", "run-1")
    assert (result.dataset, result.rows) == ("orders", 2)
    assert not lake.storage.exists("landing/orders/jan.csv")
    assert lake.storage.get_bytes(result.manifest.original_key) == b"id,v\n1,a\n2,b\n"
    assert result.manifest.sha256 == hashlib.sha256(b"id,v\n1,a\n2,b\n").hexdigest()
    assert result.manifest.ingested_by == "landing"
    drop(lake, "landing/Sales Report.csv", b"x\n1\n")
    assert landing.ingest_file(lake.settings, lake.storage, "landing/Sales Report.csv").dataset == (
        "sales_report"
    )


def test_bad_file_is_rejected_with_a_report(lake: Lakehouse) -> None:
    data = b"\x00\x01\x02 not a table \xff" * 10
    drop(lake, "landing/junk.csv", data)
    with pytest.raises(IngestError) as e:
        landing.ingest_file(lake.settings, lake.storage, "landing/junk.csv", "run-9")
    assert not lake.storage.exists("landing/junk.csv")
    assert lake.storage.get_bytes("landing/_rejected/junk.csv") == data
    report = json.loads(lake.storage.get_bytes("landing/_rejected/junk.csv.error.json"))
    assert report["title"] == e.value.title and report["run_id"] == "run-9"
    assert lake.tables("bronze") == []
    # The same name rejected twice keeps both copies.
    drop(lake, "landing/junk.csv", data)
    with pytest.raises(IngestError):
        landing.ingest_file(lake.settings, lake.storage, "landing/junk.csv")
    rejected = [o.key for o in lake.storage.list_objects("landing/_rejected/")]
    assert len([k for k in rejected if not k.endswith(".error.json")]) == 2
    assert len(landing.rejected(lake.storage)) == 2


def test_bad_dataset_folder_is_rejected(lake: Lakehouse) -> None:
    drop(lake, "landing/Bad Folder/x.csv", b"a\n1\n")
    with pytest.raises(Exception, match="not allowed"):
        landing.ingest_file(lake.settings, lake.storage, "landing/Bad Folder/x.csv")
    assert lake.storage.exists("landing/_rejected/Bad Folder/x.csv")


def test_refuses_keys_outside_landing(lake: Lakehouse) -> None:
    with pytest.raises(IngestError, match="not a file in the landing zone"):
        landing.ingest_file(lake.settings, lake.storage, "landing/_rejected/x.csv")


def test_fingerprint_changes_with_the_file() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    a = landing.LandingFile("landing/a.csv", 10, t)
    assert a.fingerprint != landing.LandingFile("landing/a.csv", 11, t).fingerprint
    assert a.fingerprint != landing.LandingFile("landing/a.csv", 10, t + timedelta(1)).fingerprint


def test_dataset_for_a_landing_file(lake: Lakehouse) -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert landing.dataset_for(landing.LandingFile("landing/Sales Q1.csv.gz", 1, t)) == "sales_q1"
    assert landing.dataset_for(landing.LandingFile("landing/orders/x.csv", 1, t)) == "orders"
    assert (
        landing.dataset_for(landing.LandingFile("landing/Bad Folder/x.csv", 1, t)) == "bad_folder"
    )
    drop(lake, "landing/orders/x.csv", b"a\n1\n")
    with pytest.raises(IngestError, match="belongs to dataset 'orders'"):
        landing.ingest_file(lake.settings, lake.storage, "landing/orders/x.csv", dataset="sales")
    assert lake.storage.exists("landing/orders/x.csv"), "a wrong request leaves the file alone"
