"""When gold follows its inputs: declarative automation, a freshness backstop, and optional
cron schedules.

`eager()` requests a gold asset when an input updates. It reacts to updates as events, so
one that lands while the asset's run is already going can be forgotten when that run ends
(reproduced with the demo's four datasets arriving seconds apart); `pipelines.freshness`
catches those from the lake's state.
"""

import dagster as dg

GOLD_FOLLOWS_INPUTS = dg.AutomationCondition.eager()


def automation_sensor(interval_s: int) -> dg.AutomationConditionSensorDefinition:
    # Dagster's default automation sensor starts STOPPED and ticks every 30 s.
    return dg.AutomationConditionSensorDefinition(
        "gold_automation",
        target=dg.AssetSelection.all(),
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Rebuilds gold assets when the tables they read get a new snapshot.",
    )
