"""Each notebook-step run's executed notebook, kept with its outputs and rendered as HTML.

`<state_dir>/notebook_runs/<run_id>/<table>.ipynb` and `.html` (layout in
`lakehouse.notebook_runs`); the materialization links to the app page that shows the HTML.
A failed run keeps its notebook too: dagstermill saves it under the Dagster instance's storage
folder and logs where, `run_notebook` copies it beside the others.

The HTML is shown inside the app, so it carries no script: outputs and Markdown go through an
allow-list sanitizer, the template's own scripts (MathJax, require.js, widgets, all fetched
from a CDN) are left out, and a Content-Security-Policy forbids scripts and network loads in
case anything slipped through.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from lakehouse import LakehouseError, Settings
from lakehouse.notebook_runs import Suffix, run_file, runs_dir

OUTPUT_NOTEBOOKS = "output_notebook_io_manager"
FAILED_NOTEBOOK_LOG = "Failed notebook written to "  # dagstermill 0.29's message (pinned)

_CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "img-src data:; style-src 'unsafe-inline'; font-src data:\">"
)
# lab/index.html.j2 without any <script>: outputs are static once rendered.
_TEMPLATE = (
    "{%- extends 'lab/index.html.j2' -%}\n"
    "{%- block html_head -%}" + _CSP + "{{ super() }}{%- endblock html_head -%}\n"
    "{%- block html_head_js -%}{%- endblock html_head_js -%}\n"
    "{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}\n"
    "{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}\n"
    "{% block jupyter_widgets %}{% endblock jupyter_widgets %}\n"
    "{%- block data_javascript scoped -%}{%- endblock data_javascript -%}\n"
    "{%- block data_widget_view scoped -%}{%- endblock data_widget_view -%}\n"
    "{%- block footer -%}</html>{%- endblock footer -%}\n"
)
INJECTED = {"injected-parameters", "injected-teardown"}  # dagstermill's own cells
INJECTED_NOTE = "*Run context injected by Dagster: not shown here, kept in the `.ipynb`.*"
_DROPPED = ["script", "style", "iframe", "object", "embed", "template", "noscript", "frame"]
_TAGS = [
    *("a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del"),
    *("details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5"),
    *("h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "s", "samp"),
    *("small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot"),
    *("th", "thead", "tr", "u", "ul", "var"),
]
_ATTRIBUTES = {"class", "id", "title", "align", "colspan", "rowspan", "alt", "width", "height"}


def _allowed(tag: str, name: str, value: str) -> bool:
    if name == "href":
        return tag == "a" and value.lower().startswith(("http://", "https://", "mailto:", "#"))
    if name == "src":  # images only as data (the notebook's own plots): nothing is fetched
        return tag == "img" and value.lower().startswith("data:image/")
    return name in _ATTRIBUTES


def clean_html(html: Any) -> str:
    """Untrusted HTML (an output, rendered Markdown) → the same without anything active:
    elements that run or embed something go with their content, other tags and attributes
    outside the allow-list are dropped, links and images keep only inert URLs."""
    import bleach  # nbconvert's own sanitizer, installed with it
    from bs4 import BeautifulSoup  # likewise an nbconvert dependency

    soup = BeautifulSoup(str(html), "html.parser")
    for element in soup(_DROPPED):
        element.decompose()
    return str(
        bleach.clean(
            str(soup),
            tags=_TAGS,
            attributes=_allowed,
            protocols=["http", "https", "mailto", "data"],
            strip=True,
            strip_comments=True,
        )
    )


def render_html(notebook: bytes) -> str:
    """An executed notebook as one self-contained, script-free HTML page."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    # nbconvert and nbformat leave these unannotated; mypy refuses untyped calls.
    exporter = HTMLExporter(  # type: ignore[no-untyped-call]
        sanitize_html=True,
        extra_loaders=[DictLoader({"notebook_run.html.j2": _TEMPLATE})],
        template_file="notebook_run.html.j2",
        filters={"clean_html": clean_html},
    )
    node = nbformat.reads(notebook.decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]
    node.cells = [shown for cell in node.cells if (shown := _shown_cell(cell)) is not None]
    body, _ = exporter.from_notebook_node(node)
    return str(body)


def _shown_cell(cell: Any) -> Any:
    """The cells dagstermill adds (the run context, Dagster's warnings under it, a teardown)
    say nothing about the step: a line instead, unless one of them is where the run failed."""
    tags = set(cell.get("metadata", {}).get("tags", []))
    if not tags & INJECTED or any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
        return cell
    if "injected-teardown" in tags:
        return None
    return type(cell)(cell_type="markdown", metadata={}, source=INJECTED_NOTE)


def keep(base_dir: Path, run_id: str, table: str, notebook: bytes) -> dict[Suffix, Path]:
    """Write the executed notebook and, when it renders, its HTML; the paths written."""
    paths: dict[Suffix, Path] = {
        ".ipynb": run_file(base_dir, run_id, table, ".ipynb"),
        ".html": run_file(base_dir, run_id, table, ".html"),
    }
    paths[".ipynb"].parent.mkdir(parents=True, exist_ok=True)
    paths[".ipynb"].write_bytes(notebook)
    try:
        html = render_html(notebook)
    except Exception:  # noqa: BLE001 -- a view of the run; the run does not fail for it
        del paths[".html"]
        return paths
    tmp = paths[".html"].with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(paths[".html"])  # the app never reads half a page
    return paths


def app_link(app_url: str, run_id: str, table: str) -> str:
    """The app's Pipelines page showing this run's notebook."""
    return f"{app_url.rstrip('/')}/pipelines?notebook_run={run_id}&step={table}"


class ExecutedNotebooks(dg.ConfigurableIOManager):
    """Keeps each run's executed notebook (with its outputs) as `<base_dir>/<run>/<name>.ipynb`
    and its HTML beside it, and links both from the materialization."""

    base_dir: str
    app_url: str = ""  # where the app answers; empty: no link

    def handle_output(self, context: dg.OutputContext, obj: bytes) -> None:
        table = context.asset_key.path[-1]
        context.add_output_metadata(self.keep(context.run_id, table, obj))

    def load_input(self, context: dg.InputContext) -> Any:
        raise NotImplementedError("Notebook steps publish tables; read those, not the notebook.")

    def keep(self, run_id: str, table: str, notebook: bytes) -> dict[str, dg.MetadataValue]:
        """Write the notebook and its HTML; the metadata that points at them."""
        paths = keep(Path(self.base_dir), run_id, table, notebook)
        meta: dict[str, dg.MetadataValue] = {
            "executed_notebook": dg.MetadataValue.path(str(paths[".ipynb"]))
        }
        if ".html" in paths:
            meta["executed_notebook_html"] = dg.MetadataValue.path(str(paths[".html"]))
            if self.app_url:
                meta["notebook_run"] = dg.MetadataValue.url(app_link(self.app_url, run_id, table))
        return meta


def output_notebooks(settings: Settings) -> ExecutedNotebooks:
    return ExecutedNotebooks(base_dir=str(runs_dir(settings).resolve()), app_url=settings.app_url)


def run_notebook(context: dg.AssetExecutionContext, table: str, notebook: str) -> Iterator[Any]:
    """Run a notebook step through dagstermill; when it fails, keep the failed notebook (with
    the outputs up to the failing cell) like a successful one, and log where to see it."""
    # Private to dagstermill 0.29 (pinned): the body of define_dagstermill_asset.
    from dagstermill.asset_factory import _make_dagstermill_asset_compute_fn

    run = _make_dagstermill_asset_compute_fn(table, notebook, save_notebook_on_failure=True)
    try:
        yield from run(context.op_execution_context)
    except Exception:
        _keep_failed(context, table)
        raise


def _keep_failed(context: dg.AssetExecutionContext, table: str) -> None:
    saved = failed_notebook(context.instance, context.run_id, context.op_execution_context)
    manager = getattr(context.resources, OUTPUT_NOTEBOOKS, None)
    if saved is None or not isinstance(manager, ExecutedNotebooks):
        return
    try:
        meta = manager.keep(context.run_id, table, saved.read_bytes())
    except (OSError, LakehouseError) as e:
        context.log.warning(f"Could not keep the failed notebook {saved}: {e}")
        return
    for label, value in meta.items():
        context.log.info(f"{label}: {value.value}")
    saved.unlink(missing_ok=True)  # kept once, where the app finds it; logged above


def failed_notebook(
    instance: dg.DagsterInstance, run_id: str, op_context: dg.OpExecutionContext
) -> Path | None:
    """Where dagstermill saved this step's failed notebook, from the line it logged."""
    step = op_context.get_step_execution_context().step.key
    for entry in reversed(instance.all_logs(run_id)):
        message = entry.user_message or ""
        if entry.step_key == step and message.startswith(FAILED_NOTEBOOK_LOG):
            path = Path(message.removeprefix(FAILED_NOTEBOOK_LOG).strip())
            return path if path.is_file() else None
    return None
