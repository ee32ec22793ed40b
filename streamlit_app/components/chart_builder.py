"""The chart builder under a query result: pick a chart, see it, download it, save its spec.

The lake aggregates in DuckDB (in a sandboxed worker), so any result size draws at most 5,000
marks. Widget state lives in session keys under the caller's prefix and is reseeded whenever
the SQL, its columns or the initial spec change: nothing carries over to a different query.
"""

from __future__ import annotations

import json
import re
from typing import Any

import streamlit as st

from lakehouse import ChartData, ChartSpec, Lakehouse, LakehouseError, QueryResult, suggest_chart
from lakehouse.query.charts import AGGREGATES, GRAINS, Kind, Mark, kind_of
from streamlit_app.components.charts import (
    altair_chart,
    chart_image,
    image_export_available,
    spec_from_dict,
    spec_to_dict,
)
from streamlit_app.components.failsafe import error_markdown, show_error
from streamlit_app.state import page_key

MARK_LABELS: dict[Mark, str] = {
    "bar": "bar",
    "line": "line",
    "area": "area",
    "point": "scatter",
    "histogram": "histogram",
    "heatmap": "heatmap",
}
FIELDS = ("mark", "x", "y", "aggregate", "color", "time_grain", "bins", "top_n")
EXPORT_WIDTH = 800  # px of downloaded images; on the page the chart fills its container
_UNAGGREGATED: tuple[Mark, ...] = ("point", "histogram", "heatmap")


def render_chart_builder(
    lake: Lakehouse,
    sql: str,
    result: QueryResult,
    key_prefix: str,
    initial_spec: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Draw `result`'s chart; the spec as a dict (to save with the query), or None if none."""
    kinds = {name: kind_of(t) for name, t in result.columns}
    if not kinds:
        st.info("This query returned no columns, so there is nothing to chart.")
        return None
    if result.rows == 0:
        st.info("This query returned no rows, so there is nothing to chart.")
        return None
    keys = {f: page_key(key_prefix, f"chart_{f}") for f in FIELDS}
    _seed(keys, key_prefix, sql, result, kinds, initial_spec)
    values = _widgets(keys, kinds)
    try:
        spec = ChartSpec(**values)
        data = _chart_data(lake, sql, result, spec, key_prefix)
    except LakehouseError as e:
        show_error(e)
        return None
    st.altair_chart(altair_chart(data), width="stretch")
    for note in data.notes:
        st.caption(f":material/info: {note}")
    _downloads(data, key_prefix)
    return spec_to_dict(spec)


# -- widget state ----------------------------------------------------------------------------
def _seed(
    keys: dict[str, str],
    key_prefix: str,
    sql: str,
    result: QueryResult,
    kinds: dict[str, Kind],
    initial_spec: dict[str, Any] | None,
) -> None:
    """Put the starting spec into the widgets' keys when the query (or the saved spec) is new."""
    state = st.session_state
    marker = page_key(key_prefix, "chart_seed")
    seed = json.dumps([sql, result.columns, initial_spec], sort_keys=True, default=str)
    if state.get(marker) == seed and _state_fits(keys, kinds):
        return
    start = _start_spec(result, kinds, initial_spec)
    for name, key in keys.items():
        state[key] = getattr(start, name)
    state[marker] = seed
    state.pop(page_key(key_prefix, "chart_last"), None)


def _state_fits(keys: dict[str, str], kinds: dict[str, Kind]) -> bool:
    """Whether every widget value is still there and still an option (columns can change)."""
    state = st.session_state
    if any(k not in state for k in keys.values()):
        return False  # a widget not drawn on the last run loses its state
    columns = (None, *kinds)
    return (
        state[keys["mark"]] in MARK_LABELS
        and state[keys["x"]] in kinds
        and state[keys["y"]] in columns
        and state[keys["color"]] in columns
        and state[keys["aggregate"]] in AGGREGATES
        and state[keys["time_grain"]] in ("auto", *GRAINS)
    )


def _start_spec(
    result: QueryResult, kinds: dict[str, Kind], initial_spec: dict[str, Any] | None
) -> ChartSpec:
    if initial_spec is not None:
        try:
            spec = spec_from_dict(initial_spec)
        except LakehouseError as e:
            st.warning(f"{error_markdown(e)}\n\nStarting from a suggested chart instead.")
        else:
            missing = [c for c in (spec.x, spec.y, spec.color) if c is not None and c not in kinds]
            if not missing:
                return spec
            st.warning(
                f"The saved chart uses {', '.join(missing)}, which this query no longer "
                "returns. Starting from a suggested chart instead."
            )
    return suggest_chart(result) or ChartSpec("bar", next(iter(kinds)), aggregate="count")


def _widgets(keys: dict[str, str], kinds: dict[str, Kind]) -> dict[str, Any]:
    """The chart settings from the widgets; settings the mark does not use are disabled."""

    def column(name: str | None) -> str:
        return "—" if name is None else f"{name} · {kinds[name]}"

    names: list[str | None] = [None, *kinds]
    top, bottom = st.columns(4), st.columns(4)
    mark: Mark = top[0].selectbox(
        "Chart", list(MARK_LABELS), key=keys["mark"], format_func=MARK_LABELS.__getitem__
    )
    x: str = top[1].selectbox("x", list(kinds), key=keys["x"], format_func=column)
    y = top[2].selectbox(
        "y", names, key=keys["y"], format_func=column, disabled=mark == "histogram"
    )
    aggregate = top[3].selectbox(
        "Aggregate", AGGREGATES, key=keys["aggregate"], disabled=mark in _UNAGGREGATED
    )
    color = bottom[0].selectbox(
        "Color", names, key=keys["color"], format_func=column, disabled=mark == "heatmap"
    )
    top_n = bottom[1].number_input(
        "Top colors",
        min_value=1,
        max_value=100,
        step=1,
        key=keys["top_n"],
        disabled=color is None or mark == "heatmap",
        help='Colors past these merge into "other".',
    )
    grain = bottom[2].selectbox(
        "Time grain", ("auto", *GRAINS), key=keys["time_grain"], disabled=kinds[x] != "temporal"
    )
    binnable = mark in ("histogram", "heatmap") or kinds[x] == "quantitative"
    bins = bottom[3].number_input(
        "Bins",
        min_value=1,
        max_value=1000,
        step=1,
        value=None,
        placeholder="auto",
        key=keys["bins"],
        disabled=not binnable,
    )
    if mark == "point" and (y is None or kinds[y] != "quantitative"):
        aggregate = "count"  # a scatter draws raw points: no sum for the lake to refuse
    return {
        "mark": mark,
        "x": x,
        "y": None if mark == "histogram" else y,
        "aggregate": aggregate,
        "color": None if mark == "heatmap" else color,
        "time_grain": grain if kinds[x] == "temporal" else "auto",
        "bins": bins if binnable else None,
        "top_n": int(top_n),
    }


# -- data and downloads ----------------------------------------------------------------------
def _chart_data(
    lake: Lakehouse, sql: str, result: QueryResult, spec: ChartSpec, key_prefix: str
) -> ChartData:
    """Aggregate in the lake, or reuse the last answer for this very result and spec.

    Reruns (a download click, another widget on the page) must not re-query; a new result
    object (the query ran again) or a different spec does.
    """
    key = page_key(key_prefix, "chart_last")
    last = st.session_state.get(key)
    if last is not None and last[0] == sql and last[1] is result and last[2] == spec:
        data: ChartData = last[3]
        return data
    with st.spinner("Aggregating for the chart…"):
        data = lake.chart(sql, spec)
    st.session_state[key] = (sql, result, spec, data)
    return data


def _downloads(data: ChartData, key_prefix: str) -> None:
    if not image_export_available():
        st.caption("PNG and SVG downloads need the vl-convert-python package.")
        return
    export = altair_chart(data, width=EXPORT_WIDTH)
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{data.spec.mark}_{data.spec.x}").strip("_")
    png, svg, _ = st.columns([1, 1, 4])
    png.download_button(
        "PNG",
        data=lambda: chart_image(export, "png"),  # rendered only when clicked
        file_name=f"{name}.png",
        mime="image/png",
        key=page_key(key_prefix, "chart_png"),
        on_click="ignore",
        icon=":material/download:",
    )
    svg.download_button(
        "SVG",
        data=lambda: chart_image(export, "svg"),
        file_name=f"{name}.svg",
        mime="image/svg+xml",
        key=page_key(key_prefix, "chart_svg"),
        on_click="ignore",
        icon=":material/download:",
    )


__all__ = ["render_chart_builder"]
