"""Home: what is in the lake."""

import streamlit as st

from lakehouse import LakehouseError
from streamlit_app.state import get_lakehouse

st.title("Ratatouille")
st.caption("Drop a file → bronze → silver and gold → query and chart it.")

try:
    tables = get_lakehouse().tables()
except LakehouseError as e:
    st.error(f"**{e.title}**\n\n{e.msg}")
    st.stop()

if not tables:
    st.info("The lake is empty. Ingest a file with `ratatouille ingest FILE`.")
else:
    st.dataframe(
        [
            {
                "table": t.qualified_name,
                "rows": t.rows,
                "columns": len(t.columns),
                "MB": round(t.size_bytes / 2**20, 2),
                "updated": t.updated_at,
            }
            for t in tables
        ],
        hide_index=True,
        key="home_tables",
    )
