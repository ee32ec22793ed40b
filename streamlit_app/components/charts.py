"""Aggregated chart data → Altair, and chart specs ↔ plain dicts. No Streamlit calls here.

The lake has already aggregated the data in DuckDB (`Lakehouse.chart`), so this module only
picks marks, encodings, titles and tooltips. It never draws more than `MAX_MARKS` rows: Vega-Lite
refuses more, and Altair's own guard would raise on the page instead.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import timedelta
from typing import Any, Literal

import altair as alt
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse import ChartData, ChartSpec, LakehouseError, QueryError
from lakehouse.query.charts import MAX_MARKS, Kind

ImageFormat = Literal["png", "svg"]
OTHER = "other"  # the bucket lake.chart merges colors past the top N into
_TYPE: dict[Kind, str] = {"temporal": "T", "quantitative": "Q", "nominal": "N"}
_BAD_SPEC = "Cannot read this saved chart"


class ChartImageError(LakehouseError):
    default_title = "Cannot export this chart"


# -- ChartData → alt.Chart -------------------------------------------------------------------
def altair_chart(data: ChartData, *, width: int | None = None, height: int = 360) -> alt.Chart:
    """The Altair chart for aggregated data; without `width` it stretches to its container."""
    table = _drawable(data)
    if data.spec.mark == "heatmap":
        chart = _heatmap(data, table)
    elif data.spec.mark == "point":
        chart = _scatter(data, table)
    else:
        chart = _series(data, table)
    props: dict[str, Any] = {"height": height}
    if width is not None:
        props["width"] = width
    if data.table.num_rows > MAX_MARKS:  # lake.chart caps its rows; a hand-made ChartData may not
        props["title"] = alt.Title(
            f"Only the first {MAX_MARKS:,} of {data.table.num_rows:,} rows are drawn.",
            fontSize=12,
            fontWeight="normal",
        )
    return chart.properties(**props)


def _series(data: ChartData, table: pa.Table) -> alt.Chart:
    """Bar, line, area and histogram: x (maybe binned into x…x_end), the measure y, a color."""
    mark = data.spec.mark
    binned = "x_end" in table.column_names
    bars = mark == "histogram" or (mark == "bar" and binned)
    base = alt.Chart(table)
    chart = {"line": base.mark_line, "area": base.mark_area}.get(mark, base.mark_bar)()
    x_type = _TYPE[data.x_kind]
    if mark == "bar" and data.x_kind == "quantitative" and not binned:
        x_type = "O"  # a few numeric values (years, sizes): one bar each, not slivers on a scale
    x: dict[str, Any] = {"title": data.x_title}
    if bars and binned:
        x["bin"] = "binned"  # bin edges from DuckDB; ticks sit on them
    elif data.x_kind == "nominal" and mark == "bar":
        x["sort"] = "-y"
    encodings: dict[str, Any] = {
        "x": alt.X(f"x:{x_type}", **x),
        "y": alt.Y("y:Q", title=data.y_title),
        "tooltip": _tooltips(data, table),
    }
    if bars and binned:
        encodings["x2"] = alt.X2("x_end")
    if "color" in table.column_names:
        encodings["color"] = _color(data, table)
    drawn: alt.Chart = chart.encode(**encodings)
    return drawn


def _scatter(data: ChartData, table: pa.Table) -> alt.Chart:
    encodings: dict[str, Any] = {
        "x": alt.X(f"x:{_TYPE[data.x_kind]}", title=data.x_title),
        "y": alt.Y(f"y:{_TYPE[data.y_kind]}", title=data.y_title),
        "tooltip": _tooltips(data, table),
    }
    if "color" in table.column_names:
        encodings["color"] = _color(data, table)
    drawn: alt.Chart = alt.Chart(table).mark_point(filled=True, opacity=0.7).encode(**encodings)
    return drawn


def _heatmap(data: ChartData, table: pa.Table) -> alt.Chart:
    """Counts on an x × y grid; numeric and time axes become cells from a value to the next."""
    encodings: dict[str, Any] = {
        "color": alt.Color("value:Q", title="count"),
        "tooltip": _tooltips(data, table),
    }
    for axis, kind, title in (("x", data.x_kind, data.x_title), ("y", data.y_kind, data.y_title)):
        channel, end = (alt.X, alt.X2) if axis == "x" else (alt.Y, alt.Y2)
        if kind == "nominal":
            encodings[axis] = channel(f"{axis}:N", title=title)
            continue
        table = table.append_column(f"{axis}_end", _cell_ends(table.column(axis), kind))
        binned: dict[str, Any] = {"bin": "binned"} if kind == "quantitative" else {}
        encodings[axis] = channel(f"{axis}:{_TYPE[kind]}", title=title, **binned)
        encodings[f"{axis}2"] = end(f"{axis}_end")
    drawn: alt.Chart = alt.Chart(table).mark_rect().encode(**encodings)
    return drawn


def _cell_ends(column: pa.ChunkedArray, kind: Kind) -> pa.Array:
    """Each value plus the grid step: the smallest gap between neighbouring values.

    lake.chart sends heatmap cells as their start only; equal-width bins and time grains make
    the smallest gap the cell size (months are uneven: a cell may be a few days narrow).
    """
    values = column.to_pylist()
    distinct = sorted({v for v in values if v is not None})
    gaps = [b - a for a, b in itertools.pairwise(distinct)]
    step: Any = min(gaps) if gaps else (1.0 if kind == "quantitative" else timedelta(days=1))
    return pa.array([None if v is None else v + step for v in values], type=column.type)


def _color(data: ChartData, table: pa.Table) -> alt.Color:
    """Legend ordered by total measure, with the merged "other" bucket last."""
    totals: dict[str, float] = {}
    ys = table.column("y").to_pylist() if data.y_kind == "quantitative" else None
    for i, c in enumerate(table.column("color").to_pylist()):
        if c is not None:
            totals[c] = totals.get(c, 0.0) + ((ys[i] or 0.0) if ys else 1.0)
    order = sorted((c for c in totals if c != OTHER), key=lambda c: (-totals[c], c))
    if OTHER in totals:
        order.append(OTHER)
    title = data.spec.color or "color"
    return alt.Color("color:N", title=title, sort=order)


def _tooltips(data: ChartData, table: pa.Table) -> list[alt.Tooltip]:
    names = table.column_names
    tips = [alt.Tooltip(f"x:{_TYPE[data.x_kind]}", title=data.x_title)]
    if "x_end" in names and data.spec.mark != "heatmap":
        tips.append(alt.Tooltip(f"x_end:{_TYPE[data.x_kind]}", title="to"))
    tips.append(alt.Tooltip(f"y:{_TYPE[data.y_kind]}", title=data.y_title))
    if "color" in names:
        tips.append(alt.Tooltip("color:N", title=data.spec.color or "color"))
    if "value" in names:
        tips.append(alt.Tooltip("value:Q", title="count", format=","))
    return tips


def _drawable(data: ChartData) -> pa.Table:
    """At most MAX_MARKS rows, in types Vega-Lite reads: numbers as doubles (DuckDB's HUGEINT
    sums and DECIMALs arrive as Arrow decimals, which JSON cannot hold), categories as text."""
    table = data.table.slice(0, MAX_MARKS)
    kinds: dict[str, Kind] = {
        "x": data.x_kind,
        "x_end": data.x_kind,
        "y": data.y_kind,
        "value": "quantitative",
        "color": "nominal",
    }
    columns = {n: _plain(table.column(n), kinds.get(n, "nominal")) for n in table.column_names}
    return pa.table(columns)


def _plain(column: pa.ChunkedArray, kind: Kind) -> pa.ChunkedArray | pa.Array:
    t = column.type
    if kind == "quantitative" and (
        pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_floating(t)
    ):
        return pc.cast(column, pa.float64())
    if kind == "temporal" and (pa.types.is_timestamp(t) or pa.types.is_date(t)):
        return column
    if pa.types.is_string(t):
        return column
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # lists, structs, maps
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())


# -- specs as plain dicts (saved with a query) ------------------------------------------------
_FIELDS = {f.name for f in fields(ChartSpec)}
_STR_FIELDS = ("mark", "x", "aggregate", "time_grain")
_OPTIONAL_STR = ("y", "color")


def spec_to_dict(spec: ChartSpec) -> dict[str, Any]:
    """JSON-ready: every ChartSpec field by name."""
    return asdict(spec)


def spec_from_dict(d: Mapping[str, Any]) -> ChartSpec:
    """The ChartSpec a saved dict describes; a QueryError saying what is wrong otherwise."""
    if not isinstance(d, Mapping):
        raise QueryError(f"A saved chart is a dict of settings, not {type(d).__name__}.", _BAD_SPEC)
    if unknown := sorted(set(d) - _FIELDS):
        raise QueryError(
            f"Unknown chart settings: {', '.join(unknown)}; "
            f"known are {', '.join(sorted(_FIELDS))}.",
            _BAD_SPEC,
        )
    if missing := [k for k in ("mark", "x") if d.get(k) is None]:
        raise QueryError(f"A saved chart needs {' and '.join(missing)}.", _BAD_SPEC)
    for key in _STR_FIELDS + _OPTIONAL_STR:
        value = d.get(key)
        if key in d and not (isinstance(value, str) or (value is None and key in _OPTIONAL_STR)):
            raise QueryError(f"Chart setting {key} must be text, not {value!r}.", _BAD_SPEC)
    for key in ("bins", "top_n"):
        value = d.get(key)
        if key in d and not (_is_int(value) or (value is None and key == "bins")):
            raise QueryError(
                f"Chart setting {key} must be a whole number, not {value!r}.", _BAD_SPEC
            )
    values = dict(d)
    if values["mark"] == "scatter":  # the name people use for "point"
        values["mark"] = "point"
    try:
        return ChartSpec(**values)
    except QueryError as e:
        raise QueryError(e.msg, _BAD_SPEC) from e


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- images ----------------------------------------------------------------------------------
def image_export_available() -> bool:
    """Whether `chart_image` can render: it needs the vl-convert-python package (offline)."""
    return importlib.util.find_spec("vl_convert") is not None


def chart_image(chart: alt.Chart, fmt: ImageFormat) -> bytes:
    """The chart rendered as PNG or SVG bytes, without a browser or network."""
    if fmt not in ("png", "svg"):
        raise ChartImageError(f"Charts save as png or svg, not {fmt!r}.")
    if not image_export_available():
        raise ChartImageError(
            "Saving a chart as PNG or SVG needs the vl-convert-python package; "
            "install the pinned requirements (`pip install -r requirements.txt`)."
        )
    try:
        if fmt == "svg":
            text = io.StringIO()
            chart.save(text, format="svg")
            return text.getvalue().encode()
        image = io.BytesIO()
        chart.save(image, format="png", scale_factor=2)  # sharp on high-DPI screens and slides
        return image.getvalue()
    except (ValueError, RuntimeError) as e:  # vl-convert reports a bad spec as ValueError
        raise ChartImageError(str(e)) from e


__all__ = [
    "ChartImageError",
    "altair_chart",
    "chart_image",
    "image_export_available",
    "spec_from_dict",
    "spec_to_dict",
]
