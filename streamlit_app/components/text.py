"""User-provided text (query, table, column and file names, messages quoting them) shown as
typed: Markdown would otherwise turn `![x](http://...)` into an image the browser fetches."""

import re

# Every ASCII punctuation CommonMark lets a backslash escape that Markdown, GFM or Streamlit
# (`:red[...]`, `:material/x:`, `$math$`) gives a meaning; `<` too, so no tag or autolink forms.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-!|~$:&^])")
_ORDERED = re.compile(r"^(\s*\d+)\.", re.MULTILINE)  # `1. x` would start a list


def plain(text: object) -> str:
    """`text` escaped for st.markdown / st.error / labels: it renders literally."""
    escaped = _SPECIAL.sub(r"\\\1", str(text))
    return _ORDERED.sub(r"\1\\.", escaped)
