"""`make upload-component`: rebuild the uploader's bundle from frontend/ with npm and esbuild, and
record which source it was built from, so a test (without npm, as in CI) can tell a stale
bundle from a current one."""

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "frontend"
BUNDLE = SOURCE / "bundle"  # what Streamlit serves; not "build/", which .gitignore drops
DIGEST = BUNDLE / "source.sha256"
# Browsers of the last few years; esbuild lowers newer syntax for them.
TARGETS = "chrome110,firefox110,safari16,edge110"


def source_files() -> list[Path]:
    """What the bundle is built from: the manifest, the lock file and every source file."""
    files = [SOURCE / "package.json", SOURCE / "package-lock.json"]
    return files + sorted(p for p in (SOURCE / "src").rglob("*") if p.is_file())


def source_digest() -> str:
    h = hashlib.sha256()
    for path in source_files():
        h.update(path.relative_to(SOURCE).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def build() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to rebuild the upload component (apt-get install npm)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SOURCE, check=True)
    shutil.rmtree(BUNDLE, ignore_errors=True)
    esbuild = SOURCE / "node_modules" / ".bin" / "esbuild"
    with tempfile.TemporaryDirectory() as tmp:
        meta = Path(tmp) / "meta.json"
        subprocess.run(
            [
                str(esbuild), "src/index.js", "--bundle", "--minify", "--format=iife",
                f"--target={TARGETS}", "--legal-comments=linked", f"--outdir={BUNDLE}",
                "--entry-names=bundle", "--log-level=warning", f"--metafile={meta}",
            ],
            cwd=SOURCE,
            check=True,
        )  # fmt: skip
        inputs = json.loads(meta.read_text())["inputs"]
    shutil.copy(SOURCE / "src" / "index.html", BUNDLE / "index.html")
    write_licenses(inputs)
    DIGEST.write_text(source_digest() + "\n")
    print(f"Built {BUNDLE.relative_to(HERE.parents[2])} from source {source_digest()[:12]}")


def write_licenses(inputs: dict[str, object]) -> None:
    """The licence of every npm package the bundle contains (MIT asks for its notice)."""
    packages = sorted(
        {m[1] for i in inputs if (m := re.match(r"node_modules/((?:@[^/]+/)?[^/]+)/", i))}
    )
    parts = []
    for name in packages:
        folder = SOURCE / "node_modules" / name
        manifest = json.loads((folder / "package.json").read_text())
        found = sorted(folder.glob("LICEN[CS]E*")) or sorted(folder.glob("licen[cs]e*"))
        text = found[0].read_text().strip() if found else "(no licence file in the package)"
        parts.append(f"{name} {manifest['version']} ({manifest.get('license')})\n\n{text}\n")
    (BUNDLE / "THIRD_PARTY_LICENSES.txt").write_text(("\n" + "-" * 72 + "\n\n").join(parts))


if __name__ == "__main__":
    build()
