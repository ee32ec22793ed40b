"""The Upload page, driven by Streamlit's AppTest against a real lake in tmp_path.

AppTest cannot run the browser uploader (a custom component), so these tests check what the
page hands it and what the page shows for uploads the server has finished: the server's status
(`UploadStatus`) of a batch really ingested into the lake, turned into the page's outcome. The
uploader itself runs in Chromium (tests/e2e/test_resumable_upload.py).
"""

import io
import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from lakehouse import Lakehouse, Mode, Settings, UploadStatus
from streamlit_app.components.resumable_upload import CompletedUpload, completed_uploads
from streamlit_app.components.resumable_upload.build import (
    BUNDLE,
    DIGEST,
    SOURCE,
    source_digest,
)
from streamlit_app.components.upload_results import UploadOutcome, outcome_from_status
from streamlit_app.page_state import UploadState
from tests.app.appenv import APP, fresh_app

ORDERS = b"id,amount\n1,9.5\n2,3\n3,4.25\n"
DAGSTER_DOWN = "http://127.0.0.1:9"  # nothing listens: the page must fail soft
UPLOADS_URL = "http://127.0.0.1:9/tus"  # the browser's, never called by the app


@pytest.fixture
def lake(tmp_path, monkeypatch) -> Lakehouse:
    fresh_app(
        tmp_path, monkeypatch, max_upload_mb=50, dagster_url=DAGSTER_DOWN, uploads_url=UPLOADS_URL
    )
    return Lakehouse(Settings())


def upload_page(state: UploadState | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    if state is not None:
        at.session_state[UploadState.key("state")] = state
    at.switch_page("app_pages/upload.py").run()
    assert not at.exception
    return at


def uploader_args(at: AppTest) -> dict[str, object]:
    """The arguments the page gave the uploader (AppTest keeps the element, not its frame)."""
    [element] = [e for e in at.main if e.type == "component_instance"]
    args: dict[str, object] = json.loads(element.proto.json_args)
    return args


def ingested(lake: Lakehouse, name: str, data: bytes, dataset: str) -> UploadStatus:
    """An upload ingested as the server does it (lake.ingest), and the status it reports."""
    r = lake.ingest(io.BytesIO(data), dataset=dataset, filename=name, who="upload")
    return UploadStatus(
        id="0" * 32, state="ingested", filename=name, dataset=dataset, mode=r.manifest.mode,
        length=len(data), batch_id=r.manifest.batch_id, rows=r.rows,
        elapsed_s=r.elapsed_s, replaced_batches=r.replaced_batches,
    )  # fmt: skip


def finished(lake: Lakehouse, *statuses: UploadStatus) -> UploadState:
    """The page's state after the uploader reported these uploads and the server finished them."""
    state = UploadState()
    for i, s in enumerate(statuses):
        mode: Mode = "replace" if s.mode == "replace" else "append"
        upload = CompletedUpload(f"up{i}", s.filename, s.length, s.dataset, mode)
        state.add([upload])
        state.outcomes[upload.id] = outcome_from_status(lake, s)
    return state


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_page_states_the_limit_and_the_ways_around_it(lake: Lakehouse) -> None:
    at = upload_page()
    info = at.info[0].value
    assert "up to **50 MB** each" in info
    assert "resumable" in info
    assert str(lake.settings.lake_root / "landing") in info
    assert "ratatouille ingest FILE" in info
    args = uploader_args(at)
    assert args["endpoint"] == f"{UPLOADS_URL}/files/"
    assert args["token"] is None  # no password: the upload server asks for none
    assert args["max_file_mb"] == 50  # the browser refuses bigger files before sending a byte
    assert "csv" in args["types"] and "parquet" in args["types"]  # type: ignore[operator]


def test_with_a_password_the_uploader_gets_a_token(lake: Lakehouse, monkeypatch) -> None:
    monkeypatch.setenv("RATATOUILLE_APP_PASSWORD", "open sesame")
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input(key="auth_password").set_value("open sesame")
    at.button[0].click().run()
    at.switch_page("app_pages/upload.py").run()
    assert not at.exception
    token = uploader_args(at)["token"]
    assert isinstance(token, str) and token
    at.run()
    assert uploader_args(at)["token"], "every rerun hands over a token"


def test_an_ingested_upload_shows_what_it_became(lake: Lakehouse) -> None:
    at = upload_page(finished(lake, ingested(lake, "orders.csv", ORDERS, "orders")))
    text = markdown(at)
    assert "orders.csv → bronze.orders: **3 rows**, 2 columns (batch 1 of the dataset" in text
    assert f"({DAGSTER_DOWN}/runs?q%5B%5D=tag%3Aratatouille%2Fdataset%3Dorders)" in text
    assert any("Dagster is not reachable" in c.value for c in at.caption)
    columns, preview = at.dataframe[0].value, at.dataframe[1].value
    assert dict(zip(columns["column"], columns["type"], strict=True)) == {
        "id": "BIGINT",
        "amount": "DOUBLE",
    }
    assert preview["id"].tolist() == [1, 2, 3]
    at.run()  # any later rerun still shows the result
    assert "**3 rows**" in markdown(at)


def test_a_later_batch_shows_its_number_and_schema_drift(lake: Lakehouse) -> None:
    first = ingested(lake, "orders.csv", ORDERS, "orders")
    later = ingested(lake, "orders.csv", b"id,amount,note\n4,1.5,late\n", "orders")
    at = upload_page(finished(lake, first, later))
    assert "batch 2 of the dataset, append" in markdown(at)
    assert "**Schema drift**" in at.warning[0].value
    assert "added note" in at.warning[0].value


def test_a_rejected_upload_shows_the_servers_error_as_the_page_did(lake: Lakehouse) -> None:
    rejected = UploadStatus(
        id="1" * 32, state="rejected", filename="junk.csv", dataset="junk", mode="append",
        length=4096, error_title="Not a text file",
        error_message="junk.csv has NUL bytes at byte 0.",
    )  # fmt: skip
    at = upload_page(finished(lake, rejected, ingested(lake, "orders.csv", ORDERS, "orders")))
    assert "junk.csv: nothing was ingested" in markdown(at)
    assert "**Not a text file**" in at.error[0].value
    assert "NUL bytes" in at.error[0].value
    assert "**3 rows**" in markdown(at), "one refused file does not hide the others"


def test_an_upload_the_server_does_not_know_says_so(lake: Lakehouse) -> None:
    state = UploadState()
    state.add([CompletedUpload("0123456789abcdef", "gone.csv", 10, "gone", "append")])
    at = upload_page(state)
    assert any("**Upload not found**" in e.value for e in at.error)
    assert "gone.csv: nothing was ingested" in markdown(at)
    assert isinstance(at.session_state[UploadState.key("state")].outcomes["0123456789abcdef"],
                      UploadOutcome)  # fmt: skip


def test_the_uploaders_value_becomes_uploads_and_nothing_malformed_does() -> None:
    good = {"id": "a1", "name": "x.csv", "size": 3, "dataset": "x", "mode": "replace"}
    value = {
        "asks": 2,
        "completed": [
            good,
            {**good, "mode": "merge"},  # not a mode
            {**good, "size": "3"},
            {**good, "id": ""},
            "a1",
        ],
    }
    assert completed_uploads(value) == [CompletedUpload("a1", "x.csv", 3, "x", "replace")]
    assert completed_uploads(None) == []  # before the first upload
    assert completed_uploads([good]) == []


def test_uploads_are_remembered_once_each_in_the_order_they_finished() -> None:
    a = CompletedUpload("a", "a.csv", 1, "a", "append")
    b = CompletedUpload("b", "b.csv", 1, "b", "append")
    state = UploadState()
    state.add([a])
    state.add([a, b])  # the uploader reports every upload of its page view, each time
    assert list(state.uploads.values()) == [a, b]


def test_the_committed_bundle_is_built_from_the_current_source() -> None:
    """`make upload-component` rebuilds it; CI has no npm, so the bundle is committed."""
    assert DIGEST.read_text().strip() == source_digest(), "run `make upload-component`"
    page = (BUNDLE / "index.html").read_text()
    for asset in re.findall(r'(?:src|href)="\./([^"]+)"', page):
        assert (BUNDLE / asset).is_file(), asset
    assert (BUNDLE / "bundle.js").stat().st_size > 100_000  # Uppy is in it: no CDN at run time
    assert not re.search(r"<script[^>]+src=\"https?:", page)
    lock = json.loads((SOURCE / "package-lock.json").read_text())
    assert not any(
        re.match(r"[\^~><]", v) for v in json.loads((SOURCE / "package.json").read_text())[
            "dependencies"].values()
    ), "exact versions"  # fmt: skip
    assert lock["packages"][""]["dependencies"]["@uppy/tus"] == "6.0.0"
