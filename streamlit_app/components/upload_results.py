"""Upload results: ingest one uploaded file with progress, and show what it became."""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import pyarrow as pa
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.uploaded_file_manager import UploadedFile

from lakehouse import IngestResult, Lakehouse, LakehouseError, Mode, Progress
from streamlit_app.components.failsafe import show_error, unexpected
from streamlit_app.components.text import plain
from streamlit_app.dagster_client import DagsterError
from streamlit_app.dagster_state import get_dagster

PREVIEW_ROWS = 20
DATASET_TAG = "ratatouille/dataset"  # the tag pipelines/sensors.py puts on a dataset's runs
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadOutcome:
    """One file's result, kept in session state so it survives reruns."""

    file: str
    dataset: str
    result: IngestResult | None = None
    batches: int = 0
    preview: pa.Table | None = None
    error: LakehouseError | None = None


def with_progress(bar: DeltaGenerator, work: Callable[[Progress], IngestResult]) -> IngestResult:
    """Run `work` in a thread and draw its progress here: only the script's thread may draw,
    and ingest reports from threads of its own."""
    latest = [("receiving", 0.0)]

    def report(stage: str, fraction: float) -> None:
        latest[0] = (stage, fraction)

    with ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(work, report)
        while not wait([job], timeout=0.2).done:
            stage, fraction = latest[0]
            bar.progress(fraction, text=f"{stage} {fraction:.0%}")
        return job.result()


def ingest(lake: Lakehouse, f: UploadedFile, dataset: str, mode: Mode) -> UploadOutcome:
    with st.status(f"Ingesting {plain(f.name)} into bronze.{dataset}", expanded=True) as status:
        bar = st.progress(0.0, text="receiving")
        f.seek(0)
        try:
            result = with_progress(
                bar,
                lambda progress: lake.ingest(
                    f, dataset=dataset, mode=mode, filename=f.name, who="upload", progress=progress
                ),
            )
        except LakehouseError as e:
            status.update(label=f"{plain(f.name)}: {plain(e.title)}", state="error", expanded=False)
            return UploadOutcome(f.name, dataset, error=e)
        except Exception as e:  # noqa: BLE001 - one file's bug must not stop the others (logged)
            shown = unexpected(e)
            status.update(label=f"{plain(f.name)}: unexpected error", state="error", expanded=False)
            return UploadOutcome(f.name, dataset, error=shown)
        status.update(label=f"{plain(f.name)} → bronze.{dataset}", state="complete", expanded=False)
    try:  # the batch is in: a failed read-back only loses the preview
        batches = lake.table("bronze", dataset).batches
        preview = lake.preview("bronze", dataset, rows=PREVIEW_ROWS)
    except LakehouseError:
        batches, preview = 0, None
    return UploadOutcome(f.name, dataset, result, batches, preview)


def runs_url(dagster_url: str, dataset: str) -> str:
    """Dagster's run list filtered by the tag the pipeline puts on a dataset's runs."""
    query = urlencode({"q[]": f"tag:{DATASET_TAG}={dataset}"})  # as Dagster's UI writes it
    return f"{dagster_url.rstrip('/')}/runs?{query}"


def show(o: UploadOutcome, dagster_url: str) -> None:
    with st.container(border=True):
        if o.result is None:
            st.markdown(f"{plain(o.file)}: nothing was ingested")
            show_error(o.error or LakehouseError("", title="Not ingested"))
            return
        r, m = o.result, o.result.manifest
        batch = f"batch {o.batches} of the dataset, " if o.batches else ""
        replaced = f", replaced {r.replaced_batches} earlier batches" if r.replaced_batches else ""
        st.markdown(
            f"{plain(o.file)} → bronze.{r.dataset}: **{r.rows:,} rows**, {len(m.schema)} columns "
            f"({batch}{m.mode}{replaced}, {r.elapsed_s:.1f} s)"
        )
        if r.drift.changed:  # a first batch has no drift
            st.warning(f"**Schema drift** against the earlier batches: {r.drift.describe()}")
        elif o.batches > 1 or r.replaced_batches:
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
        st.markdown(
            "The pipeline picks it up from here: bronze → silver → gold. "
            f"[Dagster runs for `{r.dataset}`]({runs_url(dagster_url, r.dataset)})"
        )
        pipeline_runs(r.dataset, m.ingested_at)


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
        st.caption("No run yet: the pipeline's sensor starts one within seconds of an upload.")
    for run in runs:
        what = ", ".join(run.assets) or run.job
        took = f" in {run.duration_s:.1f} s" if run.duration_s is not None else ""
        error = f": {run.error.splitlines()[0]}" if run.error else ""
        st.markdown(f"- [{run.status.lower()}]({run.url}) {plain(what)}{took}{plain(error)}")
