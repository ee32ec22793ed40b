"""The resumable uploader: Uppy's Dashboard in the browser sends files over tus to the lake's
upload server, so a file never passes through the app's memory and a dropped connection
resumes. The page gets back the uploads that finished; the server ingests them itself.

The bundle in frontend/bundle/ is committed (`make upload-component` rebuilds it with npm), so
running the app needs no npm.
"""

from dataclasses import dataclass
from typing import Any, cast

from streamlit.components import v1 as components

from lakehouse import Mode
from streamlit_app.components.resumable_upload.build import BUNDLE

MODES: tuple[Mode, ...] = ("append", "replace")


@dataclass(frozen=True)
class CompletedUpload:
    """One file the upload server has received whole; `id` is its tus upload id."""

    id: str
    name: str
    size: int
    dataset: str
    mode: Mode


def completed_uploads(value: Any) -> list[CompletedUpload]:
    """The component's value, `{"completed": [{id, name, size, dataset, mode}, ...], ...}`, as
    uploads; anything malformed is left out (the value comes from the browser)."""
    rows = value.get("completed") if isinstance(value, dict) else None
    out = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        upload_id, name, size = row.get("id"), row.get("name"), row.get("size")
        dataset, mode = row.get("dataset"), row.get("mode")
        if (
            isinstance(upload_id, str)
            and upload_id
            and isinstance(name, str)
            and isinstance(size, int)
            and isinstance(dataset, str)
            and mode in MODES
        ):
            out.append(CompletedUpload(upload_id, name, size, dataset, cast(Mode, mode)))
    return out


def resumable_upload(
    endpoint: str, token: str | None, *, max_file_mb: int, types: list[str], key: str
) -> list[CompletedUpload]:
    """Draw the uploader; the uploads it finished in this page view, oldest first.

    `endpoint` is the tus creation URL (`…/files/`); `token` goes in an `Authorization: Bearer`
    header (None: no header). A new token on a rerun reaches uploads already under way.
    """
    # Declared on each call: Streamlit registers a component with the running server, and
    # tests start several servers in one process.
    component = components.declare_component("resumable_upload", path=str(BUNDLE))
    value = component(
        endpoint=endpoint, token=token, max_file_mb=max_file_mb, types=types, key=key, default=None
    )
    return completed_uploads(value)
