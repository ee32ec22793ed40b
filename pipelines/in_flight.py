"""Runs queued or running: the one query both sensors use to leave work in flight alone."""

import dagster as dg

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def runs_in_flight(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """The instance's runs that are queued or running (the newest 500)."""
    return list(instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT), limit=500))
