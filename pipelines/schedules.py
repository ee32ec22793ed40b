"""Cron schedules for gold SQL models that ask for one (`-- schedule: 0 6 * * *`)."""

import dagster as dg

from lakehouse import Settings
from lakehouse import models as sql_models
from pipelines.keys import gold_key


def model_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            name=f"{m.name}_schedule",
            target=dg.AssetSelection.assets(gold_key(m.name)),
            cron_schedule=m.schedule,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Rebuild gold.{m.name} on its own schedule ({m.schedule}).",
        )
        for m in sql_models.load(settings.models_dir)[0]
        if m.schedule
    ]
