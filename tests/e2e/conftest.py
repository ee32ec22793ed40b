"""The running product for browser tests: Dagster (code server, webserver, daemon), the
Streamlit server, and headless Debian Chromium driven by Playwright."""

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from lakehouse import Settings
from pipelines.serve import DagsterStack, free_port
from tests.support.lakedirs import env_vars, lake_dirs

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UPLOAD_LIMIT_MB = 1
MODEL = """-- description: Sales per region, from the file uploaded in the browser test.
-- key: region
SELECT region, sum(amount) AS amount, count(*) AS sales
FROM silver.e2e_sales
GROUP BY region
"""


@contextmanager
def streamlit_server(cwd: Path, *args: str) -> Iterator[str]:
    """The app as `make run` starts it, on a free port, run in `cwd` (log: cwd/streamlit.log),
    with this process's environment; yields its URL once it answers."""
    port = free_port()
    log = (cwd / "streamlit.log").open("wb")
    app = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "streamlit"), "run",
            str(ROOT / "streamlit_app" / "streamlit_app.py"),
            "--server.address", "127.0.0.1", "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false", *args,
        ],
        env={**os.environ},
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert app.poll() is None, (cwd / "streamlit.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app did not come up"
                time.sleep(0.3)
        yield url
    finally:
        app.terminate()
        try:
            app.wait(20)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
        log.close()


# Module scope: Playwright's sync API keeps an event loop running while it is open, and
# later tests (Dagster's automation tester) call asyncio.run(), which refuses to nest.
@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("product")
    dirs = lake_dirs(root)
    (dirs["models_dir"] / "e2e_sales_by_region.sql").write_text(MODEL)
    env = env_vars(
        {**dirs, "sensor_interval_s": 1, "landing_settle_s": 1, "max_upload_mb": UPLOAD_LIMIT_MB}
    )
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    dagster_port = free_port()
    os.environ["RATATOUILLE_DAGSTER_URL"] = f"http://127.0.0.1:{dagster_port}"
    settings = Settings()
    stack = DagsterStack(settings, port=dagster_port).start()
    try:
        with streamlit_server(root, "--server.maxUploadSize", str(UPLOAD_LIMIT_MB)) as url:
            yield {"url": url, "dagster": stack.url, "lake_root": env["RATATOUILLE_LAKE_ROOT"]}
    finally:
        stack.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.environ.pop("RATATOUILLE_DAGSTER_URL", None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, product: dict[str, str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def shot(page: Page, name: str) -> None:
    """A screenshot of this step for the artifacts folder (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
