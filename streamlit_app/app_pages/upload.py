"""Upload: drop files of any size, name their datasets, see what each became in bronze."""

import streamlit as st

from lakehouse import LANDING_PREFIX as LANDING
from lakehouse import upload_token
from streamlit_app.auth import LOCAL_USER, current_user
from streamlit_app.components.resumable_upload import resumable_upload
from streamlit_app.components.upload_results import show_upload
from streamlit_app.page_state import UploadState
from streamlit_app.state import get_lakehouse

TYPES = ["csv", "tsv", "txt", "json", "ndjson", "jsonl", "parquet", "xlsx", "arrow", "feather"]
TYPES += ["gz", "zst"]  # compressed text


def size(mb: int) -> str:
    return f"{mb // 1024:,} GB" if mb >= 1024 and mb % 1024 == 0 else f"{mb:,} MB"


page = UploadState.get()
lake = get_lakehouse()
settings = lake.settings

st.title("Upload")
st.caption("Drop files to ingest them into bronze; the pipeline takes them on to silver and gold.")
drop_zone = lake.storage.uri(f"{LANDING}file").removesuffix("file")  # a folder or s3://bucket/
st.info(
    f"Files of any size, up to **{size(settings.max_upload_mb)}** each, sent in chunks and "
    "resumable: a dropped connection is retried, and dropping the same file again in this "
    "browser continues where it stopped. Files already next to the lake: copy them into the "
    f"landing drop zone `{drop_zone}` (a file there becomes a dataset, `<dataset>/<file>` "
    "appends to one), or run `ratatouille ingest FILE` where the lake is reachable."
)
# A fresh token on every rerun: tokens are short-lived and uploads can run for hours.
done = resumable_upload(
    f"{settings.uploads_url.rstrip('/')}/files/",
    upload_token(settings, current_user() or LOCAL_USER),
    max_file_mb=settings.max_upload_mb,
    types=TYPES,
    key=UploadState.key("uploader"),
)
page.add(done)

for upload in page.uploads.values():
    show_upload(lake, upload, settings.dagster_url)
