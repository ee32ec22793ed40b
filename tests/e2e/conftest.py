"""The running product for browser tests: Dagster (code server, webserver, daemon), the
upload server, the Streamlit server, and headless Debian Chromium driven by Playwright."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from lakehouse import Settings
from pipelines.serve import DagsterStack, free_port
from tests.support.lakedirs import env_vars, lake_dirs
from tests.support.waiting import wait_until_answers

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
# The Upload page's uploader (Uppy's Dashboard in a Streamlit component's frame).
UPLOADER = 'iframe[title="streamlit_app.components.resumable_upload.resumable_upload"]'
UPLOAD_BUTTON = ".uppy-StatusBar-actionBtn--upload"
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
        wait_until_answers(f"{url}/_stcore/health", app, cwd / "streamlit.log", "the app")
        yield url
    finally:
        app.terminate()
        try:
            app.wait(20)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
        log.close()


class UploadServer:
    """`ratatouille uploads` as `make run` starts it, with this process's environment (log:
    root/uploads.log); killable and restartable on one port."""

    def __init__(self, root: Path) -> None:
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cli = str(Path(sys.executable).parent / "ratatouille")
        log = self.root / "uploads.log"
        with log.open("ab") as out:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [cli, "uploads", "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_answers(f"{self.url}/health", self.proc, log, "the upload server", every_s=0.2)

    def kill(self) -> None:
        """SIGKILL: no goodbye, as when the machine loses power."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """Ctrl-C's way out, if it still runs; a kill if it does not leave within 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def exported(env: Mapping[str, str]) -> Iterator[None]:
    """`env` in os.environ, where the servers started meanwhile and the test's own Settings()
    read it; os.environ as it was on the way out."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Product:
    """The running product: the app's URL, Dagster, the upload server, its environment."""

    url: str
    dagster: DagsterStack
    uploads: UploadServer
    env: dict[str, str]


@contextmanager
def running_product(root: Path, **settings: Any) -> Iterator[Product]:
    """Dagster, the upload server and the app as `make run` starts them, on a fresh lake in
    `root` with these settings exported (the test's own Settings() reads them too)."""
    uploads = UploadServer(root)
    dagster_port = free_port()
    env = env_vars(
        {
            **lake_dirs(root),
            **settings,
            "dagster_url": f"http://127.0.0.1:{dagster_port}",
            "uploads_url": uploads.url,
        }
    )
    with exported(env):
        stack = DagsterStack(Settings(), port=dagster_port).start()
        try:
            uploads.start()
            with streamlit_server(root) as url:
                yield Product(url, stack, uploads, env)
        finally:
            uploads.stop()
            stack.stop()


# Module scope: Playwright's sync API keeps an event loop running while it is open, and
# later tests (Dagster's automation tester) call asyncio.run(), which refuses to nest.
@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("product")
    (lake_dirs(root)["models_dir"] / "e2e_sales_by_region.sql").write_text(MODEL)
    with running_product(
        root, sensor_interval_s=1, landing_settle_s=1, max_upload_mb=UPLOAD_LIMIT_MB
    ) as p:
        yield {
            "url": p.url,
            "dagster": p.dagster.url,
            "uploads": p.uploads.url,
            "lake_root": p.env["RATATOUILLE_LAKE_ROOT"],
        }


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


def choose_file(page: Page, path: Path) -> Locator:
    """`path` dropped on the Upload page's uploader, not sent yet; its line in the list."""
    frame = page.frame_locator(UPLOADER)
    frame.locator("input.uppy-Dashboard-input").first.set_input_files(str(path))
    line = frame.locator(f'#files li[data-file-name="{path.name}"]')
    expect(line).to_have_attribute("data-state", "waiting")
    return line
