"""When gold follows its inputs: declarative automation, plus optional cron schedules."""

import dagster as dg

# Like `eager()`, but an input update is remembered until the asset is next *requested*,
# not until it is next *updated*: with eager(), an input that lands while the asset is
# already running is forgotten when that run finishes, leaving gold stale until the next
# change (reproduced when the demo's four datasets arrive seconds apart).
GOLD_FOLLOWS_INPUTS = (
    (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since(
        dg.AutomationCondition.newly_requested()
    )
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("gold follows its inputs")


def automation_sensor(interval_s: int) -> dg.AutomationConditionSensorDefinition:
    # Dagster's default automation sensor starts STOPPED and ticks every 30 s.
    return dg.AutomationConditionSensorDefinition(
        "gold_automation",
        target=dg.AssetSelection.all(),
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Rebuilds gold assets when the tables they read get a new snapshot.",
    )
