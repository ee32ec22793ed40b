"""Every error a page shows is a title and a message; a traceback only reaches the server log."""

import contextlib
import logging
import uuid
from collections.abc import Iterator

import streamlit as st

from lakehouse import LakehouseError
from streamlit_app.components.text import plain

log = logging.getLogger("ratatouille.app")


def error_markdown(e: LakehouseError) -> str:
    """`e`'s title in bold and its message, both as typed (never Markdown)."""
    return f"**{plain(e.title)}**\n\n{plain(e.msg)}"


def show_error(e: LakehouseError, hint: str = "") -> None:
    """`e`'s title and message as typed (never Markdown); `hint`, the app's own Markdown, after."""
    st.error(error_markdown(e) + (f"\n\n{hint}" if hint else ""))


@contextlib.contextmanager
def failsafe() -> Iterator[None]:
    """Show an escaping exception as "Something went wrong" with a reference to find it in the
    server log. Streamlit's st.stop and reruns are BaseExceptions and pass through."""
    try:
        yield
    except LakehouseError as e:
        show_error(e)
    except Exception as e:  # noqa: BLE001 - the last line of defence of a page
        show_error(unexpected(e))


def unexpected(e: Exception) -> LakehouseError:
    """Log `e` with its traceback under a short reference; the error to show instead."""
    ref = uuid.uuid4().hex[:8]
    log.error("unexpected error in the app, reference %s", ref, exc_info=e)
    return LakehouseError(
        f"The app hit an unexpected error. Reference {ref}: the details are in the server "
        "log under it. Try again, or tell whoever runs this app.",
        title="Something went wrong",
    )
