"""`make jupyter-ext`: rebuild the prebuilt lab extension from js/ and record which source it was
built from, so a test (without npm) can tell a stale bundle from a current one."""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "js"
LABEXTENSIONS = HERE / "labextension"
BUNDLE = LABEXTENSIONS / "jupyter-ratatouille"
DIGEST = LABEXTENSIONS / "source.sha256"  # beside the bundle: JupyterLab looks only inside it


def source_files() -> list[Path]:
    """What the bundle is built from: the manifest, the lock file and every source file."""
    files = [SOURCE / "package.json", SOURCE / "package-lock.json"]
    for folder in ("src", "style"):
        files += sorted(p for p in (SOURCE / folder).rglob("*") if p.is_file())
    return files


def source_digest() -> str:
    h = hashlib.sha256()
    for path in source_files():
        h.update(path.relative_to(SOURCE).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def build() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to rebuild the lab extension (apt-get install npm)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SOURCE, check=True)
    shutil.rmtree(BUNDLE, ignore_errors=True)
    # JupyterLab's builder (what `jupyter labextension build` calls) with @jupyter/builder.
    builder = Path(sys.executable).parent / "jupyter-builder"
    subprocess.run([str(builder), "build", str(SOURCE)], cwd=SOURCE, check=True)
    DIGEST.write_text(source_digest() + "\n")
    print(f"Built {BUNDLE.relative_to(HERE.parent)} from source {source_digest()[:12]}")


if __name__ == "__main__":
    build()
