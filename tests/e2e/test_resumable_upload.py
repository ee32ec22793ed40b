"""The resumable uploader's own JavaScript in Chromium, on the committed bundle (no npm, no
server): its default Dataset for a file is the name the lake would pick for it."""

import pytest
from playwright.sync_api import Browser

from lakehouse.layers import dataset_name_from_filename
from streamlit_app.components.resumable_upload.build import BUNDLE
from tests.e2e.conftest import browser  # noqa: F401 - a fixture

pytestmark = pytest.mark.e2e

NAMES = [
    "orders.csv", "../Sales Q1 (2024).csv.gz", "C:\\Users\\ann\\Q3 report.xlsx",
    "data.tar.gz", "archive.2024.01.csv", "noext", ".hidden", "a..csv", "trailing.",
    "x.verylongext", "x.csv-1", "camelCaseFile.json", "HTTPServerLog.tsv", "Über Straße.tsv",
    "café_crème.ndjson", "日本語.csv", "Ω.parquet", "2024-sales.csv", "_leading.csv",
    "select.csv", "Order.csv", "user.json", "a" * 80 + ".csv", "a" * 59 + "_b.csv",
    "  spaced  name .csv", "ﬁle.csv", "x.ｃｓｖ", "x.٣", "e\u0301t\u00e9.csv",
]  # fmt: skip


def test_the_default_dataset_is_the_name_the_lake_would_pick(browser: Browser) -> None:  # noqa: F811
    """Path parts, stacked and odd extensions, camelCase, accents, scripts without ASCII,
    keywords, leading digits and length: where the JS port could drift from Python's rule."""
    page = browser.new_page()
    try:
        page.goto((BUNDLE / "index.html").as_uri())  # no Streamlit: the uploader never starts
        page.wait_for_function("typeof window.datasetNameFromFilename === 'function'")
        in_js = page.evaluate("names => names.map(window.datasetNameFromFilename)", NAMES)
    finally:
        page.close()
    assert dict(zip(NAMES, in_js, strict=True)) == {n: dataset_name_from_filename(n) for n in NAMES}
