"""The code location: `dagster dev -m pipelines.definitions` or a code server over `defs`.

Models and notebook steps are read from their folders when the code location loads; a new
or changed file appears after a reload (the app triggers one). New *datasets* need no
reload: they are partitions of the bronze and silver assets.
"""

import dagster as dg

from lakehouse import Settings, notebook_tables
from pipelines.assets.bronze import bronze_datasets
from pipelines.assets.gold import daily_orders, gold_inputs, model_definitions, with_reads
from pipelines.assets.notebooks import notebook_assets
from pipelines.assets.silver import silver_datasets
from pipelines.automation import automation_sensor
from pipelines.freshness import freshness_sensor
from pipelines.instance import housekeeping_job, housekeeping_schedule
from pipelines.notebook_runs import OUTPUT_NOTEBOOKS, output_notebooks
from pipelines.resources import LakehouseResource
from pipelines.sensors import bronze_sensor, landing_sensor

NOTEBOOK_STEPS = "notebook_steps"


def build_defs(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings()
    notebooks = notebook_assets(settings)
    # Gold tables that Python assets and notebook steps make: a model file may not take them.
    taken = {
        key.path[1]: f"the asset {key.to_user_string()}"
        for asset in [daily_orders, *notebooks]
        for key in asset.keys
        if key.path[0] == "gold"
    } | notebook_tables(settings.notebook_steps_dir)
    models, model_schedules = model_definitions(settings, taken)
    gold = with_reads([*models, daily_orders, *notebooks])
    automation_s = settings.sensor_interval_s
    notebook_jobs = (
        [dg.define_asset_job(NOTEBOOK_STEPS, selection=[k for a in notebooks for k in a.keys])]
        if notebooks
        else []
    )
    executor = (
        dg.multiprocess_executor
        if settings.dagster_executor == "multiprocess"
        else dg.in_process_executor
    )
    return dg.Definitions(
        assets=[bronze_datasets, silver_datasets, *gold],
        jobs=[housekeeping_job, *notebook_jobs],
        sensors=[
            bronze_sensor(settings.sensor_interval_s),
            landing_sensor(settings.sensor_interval_s),
            automation_sensor(automation_s),
            # Automation gets three of its ticks before the backstop steps in; Dagster's daemon
            # ticks at most every 5 s whatever the interval, so a shorter grace had both
            # sensors build the same gold table in the same loop.
            freshness_sensor(
                gold_inputs(gold), max(settings.sensor_interval_s, 5), 3 * max(automation_s, 5)
            ),
        ],
        schedules=[*model_schedules, housekeeping_schedule],
        resources={
            "lakehouse": LakehouseResource(),
            OUTPUT_NOTEBOOKS: output_notebooks(settings),
        },
        executor=executor,
    )


def notebook_steps_job() -> dg.JobDefinition:
    """Every notebook step as one job: `execute_job(reconstructable(notebook_steps_job))`."""
    return build_defs().resolve_job_def(NOTEBOOK_STEPS)


defs = build_defs()
