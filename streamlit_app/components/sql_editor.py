"""The SQL editor: a text area, the Run button (Ctrl+Enter) and example queries from the lake."""

import streamlit as st

from lakehouse import TableInfo
from lakehouse.layers import quote_ident, quote_literal
from lakehouse.query.charts import kind_of

MAX_EXAMPLE_TABLES = 20  # beyond this the "rows per table" example gets unwieldy
LAYER_ORDER = ("silver", "gold", "bronze")  # the table an example starts from, best first


def example_queries(tables: list[TableInfo]) -> dict[str, str]:
    """Label → SQL, built from the tables the lake actually has (a few that run anywhere when
    it is empty)."""
    if not tables:
        return {
            "A constant": "SELECT 42 AS answer",
            "A generated series": "SELECT range AS n, n * n AS square FROM range(10)",
        }
    ordered = sorted(tables, key=lambda t: (LAYER_ORDER.index(t.layer), t.name))
    main = ordered[0]
    out = {f"First 100 rows of {main.qualified_name}": _head(main)}
    counts = "\nUNION ALL\n".join(
        f"SELECT {quote_literal(t.qualified_name)} AS table_name, count(*) AS row_count "
        f"FROM {_name(t)}"
        for t in ordered[:MAX_EXAMPLE_TABLES]
    )
    out["Rows per table"] = f"{counts}\nORDER BY row_count DESC"
    kinds = {kind_of(typ): col for col, typ in reversed(main.columns)}  # first of each kind
    if "nominal" in kinds:
        col = quote_ident(kinds["nominal"])
        out[f"Most common {kinds['nominal']} in {main.qualified_name}"] = (
            f"SELECT {col}, count(*) AS n\nFROM {_name(main)}\n"
            "GROUP BY ALL\nORDER BY n DESC\nLIMIT 20"
        )
    if "temporal" in kinds:
        col = quote_ident(kinds["temporal"])
        out[f"Rows per month of {kinds['temporal']} in {main.qualified_name}"] = (
            f"SELECT date_trunc('month', {col}) AS month, count(*) AS n\n"
            f"FROM {_name(main)}\nGROUP BY ALL\nORDER BY month"
        )
    for t in ordered[1:MAX_EXAMPLE_TABLES]:
        out[f"First 100 rows of {t.qualified_name}"] = _head(t)
    return out


def head_query(table: TableInfo) -> str:
    return _head(table)


def _head(t: TableInfo) -> str:
    return f"SELECT *\nFROM {_name(t)}\nLIMIT 100"


def _name(t: TableInfo) -> str:
    # Table names are lower snake_case and never SQL keywords (layers.check_table_name), so
    # they read plain, as a user would type them.
    return f"{t.layer}.{t.name}"


def _use_example(editor_key: str, picker_key: str, examples: dict[str, str]) -> None:
    label = st.session_state[picker_key]
    if label is not None:
        st.session_state[editor_key] = examples[label]
        st.session_state[picker_key] = None


def render_editor(tables: list[TableInfo], editor_key: str) -> bool:
    """The editor; True when Run was pressed. The text lives in `editor_key` for the whole
    session, also while the user is on other pages."""
    examples = example_queries(tables)
    if editor_key not in st.session_state:
        st.session_state[editor_key] = next(iter(examples.values()))
    picker_key = f"{editor_key}_example"
    st.selectbox(
        "Examples",
        list(examples),
        index=None,
        placeholder="Insert an example query…",
        key=picker_key,
        on_change=_use_example,
        args=(editor_key, picker_key, examples),
    )
    st.text_area(
        "SQL",
        key=editor_key,
        height=200,
        help="One SELECT over bronze.*, silver.* and gold.* tables. Ctrl+Enter runs it.",
        persist_state="session",
    )
    return st.button("Run", shortcut="Ctrl+Enter", type="primary", key=f"{editor_key}_run")
