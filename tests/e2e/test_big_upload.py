"""A 1 GB file dropped on the Upload page goes up in pieces; the upload server is killed half
way and started again; the tab resumes where it stopped and the file lands in bronze and
silver, whole. The app server's memory stays flat meanwhile (the bytes never pass through it)."""

import hashlib
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from playwright.sync_api import Browser, expect

from lakehouse import Lakehouse, LakehouseError, Settings
from lakehouse.uploads.records import FOLDER, records
from tests.e2e.conftest import (  # noqa: F401 - browser: a fixture
    UPLOAD_BUTTON,
    UPLOADER,
    UploadServer,
    browser,
    running_product,
    shot,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SIZE = 2**30
DATASET = "big_upload"
RSS_RISE_MAX_MB = 50


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def streamlit_pid(port: int) -> int:
    """The process listening on the app's port (the server the browser talks to)."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True)
    return int(out.stdout.split("pid=")[1].split(",")[0])


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """(path, rows, sha256) of a CSV of 1 GiB."""
    path = tmp_path_factory.mktemp("big") / "big_upload.csv"
    # Wide rows: the bytes are what the upload is about; fewer rows keep ingest and silver short.
    rows = SIZE // 250
    duckdb.sql(
        f"COPY (SELECT i AS id, 'city ' || (i % 97) AS city, i * 0.25 AS amount, "
        f"repeat(md5(i::VARCHAR), 7) AS note FROM range({rows}) t(i)) TO '{path}' (HEADER)"
    )
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(2**24):
            digest.update(block)
    return path, rows, digest.hexdigest()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("bigstack")
    with running_product(root, sensor_interval_s=1, max_upload_mb=2048) as p:
        yield {"url": p.url, "uploads": p.uploads, "settings": Settings(), "root": root}


def test_a_1gb_upload_survives_a_server_restart(
    browser: Browser,  # noqa: F811
    stack: dict[str, Any],
    big_csv: tuple[Path, int, str],
    record: Any,
) -> None:
    path, rows, sha = big_csv
    settings: Settings = stack["settings"]
    lake = Lakehouse(settings)
    uploads: UploadServer = stack["uploads"]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{stack['url']}/upload")
    frame = page.frame_locator(UPLOADER)
    frame.locator("input.uppy-Dashboard-input").first.set_input_files(str(path))
    app_pid = streamlit_pid(int(stack["url"].rsplit(":", 1)[1]))
    line = frame.locator(f'#files li[data-file-name="{path.name}"]')
    expect(line).to_contain_text(f"bronze.{DATASET}")
    before = rss_mb(app_pid)
    peak = before
    frame.locator(UPLOAD_BUTTON).click()

    # Half way, the server dies (SIGKILL: no goodbye) and comes back seconds later.
    part = Path(lake.storage.uri(FOLDER + "x")).parent
    deadline = time.monotonic() + 300
    while not any(f.stat().st_size >= SIZE // 2 for f in part.glob("*.bin")):
        assert time.monotonic() < deadline, "the upload did not reach half way"
        peak = max(peak, rss_mb(app_pid))
        time.sleep(0.05)
    uploads.kill()
    cut_at = max(f.stat().st_size for f in part.glob("*.bin"))
    expect(line).to_have_attribute("data-state", "retrying", timeout=30_000)
    shot(page, "big-upload-1-server-gone")
    time.sleep(2)
    uploads.start()
    while line.get_attribute("data-state") != "done":
        assert time.monotonic() < deadline, f"the upload did not finish: {line.inner_text()}"
        peak = max(peak, rss_mb(app_pid))
        time.sleep(0.1)
    upload_s = time.monotonic() - (deadline - 300)
    shot(page, "big-upload-2-uploaded")

    # One upload, resumed: its record, and bronze has the very bytes.
    mine = [r for r in records(lake.storage) if r.dataset == DATASET]
    assert len(mine) == 1, [r.id for r in mine]
    shown = page.get_by_text(re.compile(rf"→ bronze\.{DATASET}: {rows:,} rows"))
    expect(shown).to_be_visible(timeout=240_000)  # the page's outcome, as for any upload
    batch = lake.bronze_batches(DATASET)[-1]
    assert (batch.rows, batch.sha256) == (rows, sha)
    while True:  # silver follows by itself
        try:
            if lake.sql(f"SELECT count(*) AS n FROM silver.{DATASET}").to_pylist() == [{"n": rows}]:
                break
        except LakehouseError:  # no silver table yet
            pass
        assert time.monotonic() < deadline + 300, "silver did not get the upload"
        time.sleep(1)
    shot(page, "big-upload-3-ingested")
    context.close()
    rise = peak - before
    record(
        "a 1 GiB CSV dropped on the Upload page in Chromium; the upload server SIGKILLed half "
        "way and restarted 2 s later",
        "the tab retried and resumed at the server's offset (one upload, no byte twice: "
        "bronze's sha256 is the file's); bronze and silver have every row; the app server's "
        f"RSS rose {rise:.0f} MB (limit {RSS_RISE_MAX_MB})",
        f"cut at {cut_at / 2**20:.0f} MiB; upload {upload_s:.0f} s; app RSS {before:.0f} → "
        f"{peak:.0f} MB",
    )
    assert rise <= RSS_RISE_MAX_MB, f"the app's RSS rose {rise:.0f} MB during the upload"
