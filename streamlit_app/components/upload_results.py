"""Upload results: follow one finished upload while the server ingests it, and show what it
became (or why it was refused)."""

import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

import pyarrow as pa
import streamlit as st

from lakehouse import (
    BatchManifest,
    Lakehouse,
    LakehouseError,
    UploadNotFound,
    UploadStatus,
    upload_outcome,
)
from streamlit_app.components.failsafe import show_error
from streamlit_app.components.resumable_upload import CompletedUpload
from streamlit_app.components.text import plain
from streamlit_app.dagster_client import DagsterError
from streamlit_app.dagster_state import get_dagster
from streamlit_app.page_state import UploadState

PREVIEW_ROWS = 20
DATASET_TAG = "ratatouille/dataset"  # the tag pipelines/sensors.py puts on a dataset's runs
FINAL = ("ingested", "rejected")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadOutcome:
    """One file's result, kept in session state so it survives reruns."""

    file: str
    dataset: str
    manifest: BatchManifest | None = None
    batches: int = 0  # the dataset's current batches, this one included
    number: int = 0  # this batch's place among them (0: no longer current)
    preview: pa.Table | None = None
    error: LakehouseError | None = None
    run_id: str | None = None  # the pipeline run the upload server started
    replaced_batches: int | None = None
    elapsed_s: float | None = None


def outcome_from_status(lake: Lakehouse, s: UploadStatus) -> UploadOutcome:
    """What an ingested or rejected upload became, read back from bronze."""
    if s.state != "ingested":
        error = LakehouseError(s.error_message or "", title=s.error_title or "Not ingested")
        return UploadOutcome(s.filename, s.dataset, error=error)
    try:  # the batch is in: a failed read-back only loses the details
        batches = lake.bronze_batches(s.dataset)
        preview = lake.preview("bronze", s.dataset, rows=PREVIEW_ROWS)
    except LakehouseError:
        batches, preview = [], None
    ids = [b.batch_id for b in batches]
    number = ids.index(s.batch_id) + 1 if s.batch_id in ids else 0
    manifest = batches[number - 1] if number else None
    return UploadOutcome(
        s.filename,
        s.dataset,
        manifest,
        len(batches),
        number,
        preview,
        run_id=s.run_id,
        replaced_batches=s.replaced_batches,
        elapsed_s=s.elapsed_s,
    )


def show_upload(lake: Lakehouse, upload: CompletedUpload, dagster_url: str) -> None:
    """The upload's outcome once the server has one; until then its ingest, live."""
    known = UploadState.get().outcomes.get(upload.id)
    if known is not None:
        show(known, dagster_url)
    else:
        follow(lake, upload)


@st.fragment(run_every=1)
def follow(lake: Lakehouse, upload: CompletedUpload) -> None:
    """Poll the server's status of one upload; the whole page reruns once it is final."""
    target = f"{plain(upload.name)} → bronze.{upload.dataset}"
    try:
        status = upload_outcome(lake.settings, upload.id)
    except UploadNotFound as e:
        gone = LakehouseError(
            f"The upload server no longer knows this upload ({e}): it expired or was deleted. "
            "Upload the file again.",
            title="Upload not found",
        )
        remember(upload, UploadOutcome(upload.name, upload.dataset, error=gone))
        return
    except LakehouseError as e:  # the status could not be read now: the next poll tries again
        show_error(e)
        return
    if status.state in FINAL:
        remember(upload, outcome_from_status(lake, status))
        return
    with st.container(border=True):
        if status.state == "receiving":  # the server has not seen the last byte yet
            st.progress(1.0, text=f"{target}: finishing the upload")
        else:
            stage, fraction = status.stage or "ingesting", status.fraction or 0.0
            st.progress(min(fraction, 1.0), text=f"{target}: {plain(stage)} {fraction:.0%}")


def remember(upload: CompletedUpload, outcome: UploadOutcome) -> None:
    UploadState.get().outcomes[upload.id] = outcome
    st.rerun(scope="app")  # the final view is drawn outside this fragment, which then stops


def runs_url(dagster_url: str, dataset: str) -> str:
    """Dagster's run list filtered by the tag the pipeline puts on a dataset's runs."""
    query = urlencode({"q[]": f"tag:{DATASET_TAG}={dataset}"})  # as Dagster's UI writes it
    return f"{dagster_url.rstrip('/')}/runs?{query}"


def show(o: UploadOutcome, dagster_url: str) -> None:
    with st.container(border=True):
        if o.manifest is None and o.error is not None:
            st.markdown(f"{plain(o.file)}: nothing was ingested")
            show_error(o.error)
            return
        if o.manifest is None:
            st.markdown(
                f"{plain(o.file)} → bronze.{o.dataset}: ingested, but a later replace has "
                "hidden its batch."
            )
            return
        m = o.manifest
        batch = f"batch {o.number} of the dataset, " if o.batches else ""
        replaced = f", replaced {o.replaced_batches} earlier batches" if o.replaced_batches else ""
        took = f", {o.elapsed_s:.1f} s" if o.elapsed_s is not None else ""
        st.markdown(
            f"{plain(o.file)} → bronze.{m.dataset}: **{m.rows:,} rows**, {len(m.schema)} columns "
            f"({batch}{m.mode}{replaced}{took})"
        )
        if m.drift.changed:  # a first batch has no drift
            st.warning(f"**Schema drift** against the earlier batches: {m.drift.describe()}")
        elif o.number > 1:
            st.caption("Same columns and types as the earlier batches.")
        cols, head = st.columns([1, 3])
        in_file = {ours: theirs for theirs, ours in m.columns}
        cols.dataframe(
            [{"column": n, "type": t, "in the file": in_file.get(n, n)} for n, t in m.schema],
            hide_index=True,
        )
        if o.preview is None:
            head.caption("No preview: the dataset could not be read back.")
        else:
            head.dataframe(o.preview, hide_index=True)
        run = ""
        if o.run_id:  # the run the upload server started, linked directly
            url = f"{dagster_url.rstrip('/')}/runs/{quote(o.run_id)}"
            run = f" (started [run {o.run_id[:8]}]({url}))"
        st.markdown(
            f"The pipeline picks it up from here: bronze → silver → gold{run}. "
            f"[Dagster runs for `{m.dataset}`]({runs_url(dagster_url, m.dataset)})"
        )
        pipeline_runs(m.dataset, m.ingested_at)


@st.fragment(run_every=5)
def pipeline_runs(dataset: str, since: str) -> None:
    """The dataset's runs since its upload, refreshed while the page is open; fails soft."""
    try:
        runs = get_dagster().runs(
            tags={DATASET_TAG: dataset}, since=datetime.fromisoformat(since), limit=5
        )
    except DagsterError as e:
        st.caption(f"{plain(e.title)}: its runs show here once it answers.")
        return
    if not runs:
        st.caption("No run yet: the pipeline starts one within seconds of an upload.")
    for run in runs:
        what = ", ".join(run.assets) or run.job
        took = f" in {run.duration_s:.1f} s" if run.duration_s is not None else ""
        error = f": {run.error.splitlines()[0]}" if run.error else ""
        st.markdown(f"- [{run.status.lower()}]({run.url}) {plain(what)}{took}{plain(error)}")
