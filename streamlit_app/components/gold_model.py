"""Save the editor's SELECT as a gold SQL model, and tell Dagster to load it."""

import streamlit as st

from lakehouse import LakehouseError, Settings, models
from lakehouse.layers import check_table_name
from streamlit_app.components.failsafe import error_markdown, show_error
from streamlit_app.dagster_client import DagsterError, DagsterUnavailable
from streamlit_app.dagster_state import get_dagster
from streamlit_app.page_state import PlaygroundState
from streamlit_app.state import get_lakehouse

UNREACHABLE = "Dagster is not reachable; the model appears when Dagster next loads its code."


def other_gold_assets() -> list[str]:
    """Gold tables that Dagster's Python assets and notebook steps make (none if Dagster is
    unreachable: the lake's catalog and the notebook folder still guard the names, and a
    clash that slips through becomes a failing asset, not a broken code location)."""
    try:
        return get_dagster().gold_tables_not_from_sql()
    except DagsterError:
        return []


def reload_code_location() -> str | None:
    """Ask Dagster to reload its code so the model shows at once; why not, if it could not."""
    try:
        get_dagster().reload()
    except DagsterUnavailable:
        return UNREACHABLE
    except DagsterError as e:
        return f"The model is saved, but Dagster's reload said: {error_markdown(e)}"
    return None


def render_save_model(settings: Settings, sql: str) -> None:
    key = PlaygroundState.key
    with st.expander("Save as gold model"):
        st.caption(
            f"Writes `{settings.models_dir}/<name>.sql`; the pipelines then build `gold.<name>` "
            "from it and rebuild it whenever its input tables change."
        )
        with st.form(key("model_form"), border=False):
            name = st.text_input("Model name", key=key("model_name")).strip()
            description = st.text_input("Description (optional)", key=key("model_desc"))
            overwrite = st.checkbox("Replace a model of that name", key=key("model_over"))
            if not st.form_submit_button("Save as gold model", key=key("model_save")):
                return
        try:
            check_table_name(name, "model")
            model = models.save(
                settings,
                name,
                sql,
                description=description or None,
                overwrite=overwrite,
                storage=get_lakehouse().storage,
                taken=other_gold_assets(),
            )
        except LakehouseError as e:
            show_error(e)
            return
        except OSError as e:
            show_error(LakehouseError(str(e), title="Could not write the model file"))
            return
        st.success(f"Saved `{model.path}`: it becomes the asset gold/{name}.")
        problem = reload_code_location()
        if problem:
            st.warning(problem)
        st.markdown(f"[Open gold/{name} in Dagster]({settings.dagster_url}/assets/gold/{name})")
