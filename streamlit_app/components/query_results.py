"""Running a playground query and showing what came back: rows, plan, export, chart."""

import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import streamlit as st

from lakehouse import Lakehouse, LakehouseError, QueryResult, QueryStore
from streamlit_app.components.chart_builder import render_chart_builder
from streamlit_app.components.failsafe import show_error, unexpected
from streamlit_app.components.text import plain
from streamlit_app.page_state import PlaygroundState

MAX_DOWNLOAD_MB = 200  # bigger exports stay on the server: the browser download holds it in RAM
MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
Format = Literal["csv", "parquet"]


@dataclass(frozen=True)
class QueryOutcome:
    """The last run, kept in session state so other buttons (export, explain) can use it."""

    sql: str
    result: QueryResult | None
    error: LakehouseError | None


@dataclass(frozen=True)
class Download:
    sql: str
    file_name: str
    data: bytes
    rows: int


def run_query(lake: Lakehouse, store: QueryStore, user: str, sql: str) -> QueryOutcome:
    """Run the SQL sandboxed and add it to the user's history (a failure is history too)."""
    try:
        result = lake.query(sql)
    except LakehouseError as e:
        outcome = QueryOutcome(sql, None, e)
    except Exception as e:  # noqa: BLE001 - a title and a message, never a traceback
        outcome = QueryOutcome(sql, None, unexpected(e))
    else:
        outcome = QueryOutcome(sql, result, None)
    r = outcome.result
    try:
        store.record(
            user,
            sql,
            elapsed_s=r.elapsed_s if r else None,
            rows=r.rows if r else None,
            error=str(outcome.error) if outcome.error else None,
        )
    except LakehouseError as e:  # the query's answer matters more than its history entry
        st.warning(f"This run is not in your history: {plain(e)}")
    return outcome


def render_result(result: QueryResult, page: PlaygroundState) -> None:
    if note := result.truncation_note:
        st.warning(f"{note} Export for all of them.")
    st.dataframe(result.table, hide_index=True, key=page.key("table"))
    st.caption(f"{result.rows:,} rows in {result.elapsed_s:.3f} s")
    with st.expander("Column types"):
        st.markdown("\n".join(f"- {plain(name)} {plain(typ)}" for name, typ in result.columns))


def render_explain(lake: Lakehouse, sql: str, page: PlaygroundState) -> None:
    """The plan DuckDB would run, on demand (kept until the next run)."""
    if st.button("Explain", key=page.key("explain"), help="Show DuckDB's query plan."):
        try:
            plan = lake.query(f"EXPLAIN {sql}")
        except LakehouseError as e:
            page.plan = e
        else:
            rows = plan.table.to_pylist()
            page.plan = "\n".join(str(r.get("explain_value", "")) for r in rows)
    shown = page.plan
    if isinstance(shown, LakehouseError):
        show_error(shown)
    elif shown:
        st.code(shown, language=None)


def render_export(lake: Lakehouse, sql: str, page: PlaygroundState) -> None:
    """Every row to CSV or Parquet on the server (streamed), then offered as a download."""
    fmt: Format = st.radio(
        "Export format", ["csv", "parquet"], horizontal=True, key=page.key("export_fmt")
    )
    if st.button("Export all rows", key=page.key("export")):
        page.download = None
        try:
            page.download = _export(lake, sql, fmt)
        except LakehouseError as e:
            show_error(e)
    download = page.download
    if download is not None and download.sql == sql:
        mb = len(download.data) / 2**20
        st.download_button(
            f"Download {download.file_name} ({download.rows:,} rows, {mb:.1f} MB)",
            data=download.data,
            file_name=download.file_name,
            mime=MIME[download.file_name.rsplit(".", 1)[1]],
            on_click="ignore",  # no rerun: the page stays as it is
            key=page.key("download_button"),
        )


def _export(lake: Lakehouse, sql: str, fmt: Format) -> Download | None:
    state_dir = lake.settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    # Under state_dir, not /tmp: that is where the lake's big scratch files are meant to go.
    with tempfile.TemporaryDirectory(prefix="sqlpg-export-", dir=state_dir) as tmp:
        path = Path(tmp) / f"query.{fmt}"
        with st.spinner("Exporting…"):
            done = lake.export(sql, path, fmt)
        mb = done.bytes / 2**20
        if mb > MAX_DOWNLOAD_MB:
            command = f"ratatouille sql {shlex.quote(' '.join(sql.split()))} -o result.{fmt}"
            st.warning(
                f"The full result is {mb:,.0f} MB ({done.rows:,} rows): too big to send "
                f"through the browser (limit {MAX_DOWNLOAD_MB} MB). Run this on the server "
                f"instead:\n\n```\n{command}\n```"
            )
            return None
        return Download(sql, path.name, path.read_bytes(), done.rows)


def render_chart(
    lake: Lakehouse, sql: str, result: QueryResult, page: PlaygroundState
) -> dict[str, Any] | None:
    """The chart builder under the results (a saved query's chart first); its spec is saved
    with the query."""
    spec: dict[str, Any] | None = render_chart_builder(
        lake, sql, result, key_prefix=page.PREFIX, initial_spec=page.chart_initial
    )
    return spec
