"""The backstop: a gold table older than its inputs gets a run, whatever automation missed.

Each gold snapshot records which input snapshots it read. Declarative automation reacts to
updates as events and can still lose one (an update landing in the same tick that a run is
requested). This sensor compares *state*: a gold table whose recorded inputs differ from the
inputs' current snapshots, for longer than a grace period and with no run in flight, is
requested once per input state (the run key), so a model that keeps failing is not retried
in a loop.
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from lakehouse import Lakehouse
from lakehouse.layers import Layer
from pipelines.in_flight import runs_in_flight
from pipelines.keys import gold_key
from pipelines.resources import LakehouseResource

GoldInputs = dict[str, tuple[tuple[str, str], ...]]  # gold table → the (layer, table)s it reads


def freshness_sensor(inputs: GoldInputs, interval_s: int, grace_s: float) -> dg.SensorDefinition:
    @dg.sensor(
        name="gold_freshness",
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        asset_selection=[gold_key(name) for name in inputs] or None,
        description="Rebuilds a gold table whose inputs changed after it was built, when "
        "automation has not done so within a grace period.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, lakehouse: LakehouseResource
    ) -> dg.SensorResult:
        busy = assets_in_flight(context.instance)
        return freshness_tick(lakehouse.lake, inputs, busy, grace_s)

    return _sensor


def assets_in_flight(instance: dg.DagsterInstance) -> set[dg.AssetKey]:
    return {key for run in runs_in_flight(instance) for key in (run.asset_selection or ())}


def freshness_tick(
    lake: Lakehouse,
    inputs: GoldInputs,
    busy: set[dg.AssetKey],
    grace_s: float,
    now: datetime | None = None,
) -> dg.SensorResult:
    now = now or datetime.now(UTC)
    wanted = sorted({dep for deps in inputs.values() for dep in deps})
    found = lake.find_tables(wanted)
    requests, waiting = [], []
    for name, deps in sorted(inputs.items()):
        if gold_key(name) in busy or not deps:
            continue
        infos = [i for d in deps if (i := found[d]) is not None]
        if len(infos) < len(deps):
            continue  # an input does not exist yet: nothing to build from
        state = {i.qualified_name: i.snapshot_id for i in infos}
        changed = lake.stale_inputs(Layer.GOLD, name, infos)
        if not changed:
            continue
        newest = max(datetime.fromisoformat(i.updated_at) for i in changed)
        if now - newest < timedelta(seconds=grace_s):
            waiting.append(name)  # automation gets the first go
            continue
        digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]
        requests.append(
            dg.RunRequest(
                run_key=f"{name}:{digest}",
                asset_selection=[gold_key(name)],
                tags={"ratatouille/reason": "inputs changed since the last build"},
            )
        )
    skip = None
    if not requests:
        skip = f"Waiting for automation: {', '.join(waiting)}." if waiting else "Gold is fresh."
    return dg.SensorResult(run_requests=requests, skip_reason=skip)
