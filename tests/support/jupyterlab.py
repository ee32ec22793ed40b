"""`jupyter lab` as `make run` starts it (with the promote extensions), for tests: a free
port, a token, no developer's Jupyter config or kernels, stopped afterwards."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.launch import JUPYTER_EXTENSIONS
from pipelines.serve import free_port
from tests.support.waiting import wait_until_answers


@contextmanager
def running_lab(root: Path, root_dir: Path, env: dict[str, str], token: str) -> Iterator[str]:
    """Serve `root_dir`; `env` is the process environment (RATATOUILLE_* included); config,
    runtime files and the log (`jupyter.log`) go under `root`. Yields the lab's URL."""
    env = {k: v for k, v in env.items() if not k.startswith("JUPYTER")}
    env |= {
        "JUPYTER_TOKEN": token,
        "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(root / "jupyter-runtime"),
        # A python3 kernelspec in the user's Jupyter folder would win over this venv's.
        "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter"),
        "JUPYTERLAB_SETTINGS_DIR": str(root / "lab-settings"),
    }
    # The command palette as a sidebar panel: the modal one closes whenever focus moves, which
    # a busy page does at random.
    palette = root / "lab-settings" / "@jupyterlab" / "apputils-extension"
    palette.mkdir(parents=True, exist_ok=True)
    (palette / "palette.jupyterlab-settings").write_text('{"modal": false}')
    port = free_port()
    log = (root / "jupyter.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
            "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root_dir}", *JUPYTER_EXTENSIONS, "--allow-root",
        ],
        env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        status = f"{url}/api/status?token={token}"
        wait_until_answers(status, proc, root / "jupyter.log", "jupyter lab", timeout_s=90)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def clean_env() -> dict[str, str]:
    """This process's environment without its RATATOUILLE_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RATATOUILLE_")}
