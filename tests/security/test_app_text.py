"""User-provided names render as typed, never as Markdown (issue 13, finding 11), and every error
the app shows is a title and a message, never a traceback (finding 12, app side)."""

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from lakehouse import Lakehouse, Settings
from lakehouse.query.saved_queries import QueryStore
from streamlit_app.components.text import plain
from tests.app.appenv import APP, fresh_app
from tests.report import Record

EVIL = "![x](http://127.0.0.1:9/x.png) **bold** <b>x</b> [a](http://127.0.0.1:9/)"
# CommonMark, as Streamlit's front end (react-markdown) reads it; html on to see raw tags.
MD = MarkdownIt("commonmark", {"html": True})


def rendered(markdown: str) -> str:
    return str(MD.render(markdown))


def assert_inert(markdown: str) -> None:
    html = rendered(markdown)
    assert "<img" not in html and "<a " not in html, html
    assert "<strong>bold</strong>" not in html and "<b>" not in html, html


@pytest.mark.parametrize(
    "text", [EVIL, "# heading", "- item", "`code`", "a_b_c", "1. x", "<script>x</script>"]
)
def test_plain_renders_literally(text: str) -> None:
    """Each Markdown construct a name could smuggle in."""
    html = rendered(plain(text))
    assert_inert(plain(text))
    assert "<h1>" not in html and "<li>" not in html and "<code>" not in html
    assert "<script>" not in html and "<em>" not in html and "<strong>" not in html


def markdown_values(at: AppTest) -> list[str]:
    """The Markdown source of every element that renders Markdown."""
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title"):
        out += [str(getattr(e, "value", "")) for e in at.get(kind)]
    out += [str(getattr(e, "label", "")) for e in at.get("expander")]
    out += [str(b.label) for b in at.button]
    return out


def test_a_saved_query_name_is_plain_on_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    fresh_app(tmp_path, monkeypatch, dagster_url="http://127.0.0.1:9")
    lake = Lakehouse(Settings())
    store = QueryStore(lake.settings.state_dir / "app.sqlite")
    store.save(EVIL, "SELECT * FROM gold.nowhere", chart={"kind": "bar"}, pinned=True, user="eve")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    values = markdown_values(at)
    shown = [v for v in values if "x.png" in v]
    assert shown, "the name is on the page"
    for value in shown:  # the page's own text has bold and code; the name's must have none
        assert_inert(value)
    assert any(
        "![x](http://127.0.0.1:9/x.png)" in re.sub(r"<[^>]+>", "", rendered(v)) for v in shown
    )
    record(
        "saved query named ![img](http://…) **bold** <b> [link] on Home",
        "shown as typed: no image, link or bold rendered",
    )


def test_an_unexpected_exception_is_a_titled_message(record: Record) -> None:
    def page() -> None:
        from streamlit_app.components.failsafe import failsafe

        with failsafe():
            raise RecursionError("maximum recursion depth exceeded in /srv/secret/path.py")

    at = AppTest.from_function(page).run()
    assert not at.exception, "no exception element (Streamlit's traceback box)"
    (error,) = at.error
    assert "Something went wrong" in error.value and "Reference" in error.value
    text = " ".join(markdown_values(at))
    assert "Traceback" not in text and "/srv/secret" not in text and "RecursionError" not in text
    record("a page raising RecursionError with a server path", "title + reference id, no traceback")


def test_a_deeply_nested_query_fails_as_a_titled_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    """The query path itself: whatever the guard does with it, the outcome is a LakehouseError."""
    from streamlit_app.components.query_results import run_query

    fresh_app(tmp_path, monkeypatch)
    sql = "SELECT * FROM " + "(SELECT * FROM " * 5000 + "(SELECT 1)" + ")" * 5000
    with Lakehouse(Settings()) as lake:
        store = QueryStore(lake.settings.state_dir / "app.sqlite")
        outcome = run_query(lake, store, "eve", sql)
    assert outcome.error is not None and outcome.error.title
    assert "Traceback" not in outcome.error.msg
    record("5,000 nested subqueries in the playground", f"shown as: {outcome.error.title}")


def test_streamlit_hides_error_details() -> None:
    """The app's own config: an exception that escapes everything shows no details."""
    import tomllib

    config = Path(APP).parent / ".streamlit" / "config.toml"
    assert tomllib.loads(config.read_text())["client"]["showErrorDetails"] == "none"
