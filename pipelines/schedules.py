"""Cron schedules for gold SQL models that ask for one (`-- schedule: 0 6 * * *`)."""

import dagster as dg

from lakehouse import Model
from pipelines.keys import gold_key


def model_schedule(model: Model) -> dg.ScheduleDefinition | None:
    """The model's schedule, if it has one; raises what Dagster refuses (the caller turns that
    into a broken asset, so one model's schedule never stops the code location loading)."""
    if not model.schedule:
        return None
    return dg.ScheduleDefinition(
        name=f"{model.name}_schedule",
        target=dg.AssetSelection.assets(gold_key(model.name)),
        cron_schedule=model.schedule,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Rebuild gold.{model.name} on its own schedule ({model.schedule}).",
    )
