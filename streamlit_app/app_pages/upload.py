"""Upload: drop files, name their datasets, ingest them into bronze, see what each became."""

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from lakehouse import LANDING_PREFIX as LANDING
from lakehouse import LakehouseError, Mode
from lakehouse.layers import check_table_name, dataset_name_from_filename
from streamlit_app.components.failsafe import show_error
from streamlit_app.components.upload_results import ingest, show
from streamlit_app.page_state import UploadState
from streamlit_app.state import get_lakehouse

TYPES = ["csv", "tsv", "txt", "json", "ndjson", "jsonl", "parquet", "xlsx", "arrow", "feather"]
TYPES += ["gz", "zst"]  # compressed text
MODES: tuple[Mode, ...] = ("append", "replace")


def choose(f: UploadedFile) -> tuple[str, Mode] | None:
    """Dataset name and mode for one file; None (and an inline error) for an invalid name."""
    file_col, name_col, mode_col = st.columns([2, 2, 1])
    file_col.markdown(f"`{f.name}`")
    default = dataset_name_from_filename(f.name)
    name = name_col.text_input("Dataset", default, key=UploadState.key(f"name_{f.file_id}"))
    hint = "append adds a batch; replace hides the dataset's earlier batches."
    mode = mode_col.radio("Mode", MODES, key=UploadState.key(f"mode_{f.file_id}"), help=hint)
    try:
        return check_table_name(name.strip(), "dataset"), mode
    except LakehouseError as e:
        with name_col:
            show_error(e)
        return None


page = UploadState.get()
lake = get_lakehouse()
settings = lake.settings
# The server refuses bigger bodies (server.maxUploadSize); the widget enforces ours in the browser.
limit_mb = min(settings.max_upload_mb, int(st.get_option("server.maxUploadSize")))

st.title("Upload")
st.caption("Drop files to ingest them into bronze; the pipeline takes them on to silver and gold.")
drop_zone = lake.storage.uri(f"{LANDING}file").removesuffix("file")  # a folder or s3://bucket/
st.info(
    f"Up to **{limit_mb} MB** per file. Bigger files: copy them into the landing drop zone "
    f"`{drop_zone}` (a file there becomes a dataset, `<dataset>/<file>` appends to one), "
    "or run `ratatouille ingest FILE` where the lake is reachable."
)
files = st.file_uploader(
    "Files",
    type=TYPES,
    accept_multiple_files=True,
    key=UploadState.key("files"),
    max_upload_size=limit_mb,
)

if files:
    with st.form(UploadState.key("form")):
        choices = [choose(f) for f in files]
        submitted = st.form_submit_button("Ingest", type="primary")
    if submitted and None in choices:
        st.error("Fix the dataset names above: nothing was ingested.")
    elif submitted:
        page.results = [
            ingest(lake, f, *c) for f, c in zip(files, choices, strict=True) if c is not None
        ]

for outcome in page.results:
    show(outcome, settings.dagster_url)
