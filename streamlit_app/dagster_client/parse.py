"""Dagster's GraphQL answers → the client's types; its error text → what a person reads."""

import ast
import json
import re
from datetime import UTC, datetime
from typing import Any

from streamlit_app.dagster_client.types import (
    IN_FLIGHT,
    AssetCheckStatus,
    AssetInfo,
    DaemonInfo,
    DagsterError,
    RunInfo,
    SensorInfo,
    StepInfo,
)

PARTITION_TAG = "dagster/partition"
_STEP_ERROR_WRAPPER = "DagsterExecutionStepExecutionError"  # the real error is its cause

Json = dict[str, Any]


def unwrap(result: Json, expected: str, title: str) -> Json:
    """A `...OrError` union: the expected member, or a DagsterError with Dagster's message."""
    if result.get("__typename") == expected:
        return result
    if "errors" in result:  # RunConfigValidationInvalid
        message = "\n".join(e["message"] for e in result["errors"])
    else:
        message = result.get("message") or f"Dagster answered {result.get('__typename')}"
    raise DagsterError(strip_class(message).strip(), title=title)


def is_graphql(raw: bytes) -> bool:
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    return isinstance(body, dict) and ("data" in body or "errors" in body)


def graphql_errors(raw: bytes) -> list[str]:
    try:
        body = json.loads(raw)
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [str(e.get("message", e)) for e in errors or [] if isinstance(e, dict)]


def run_info(r: Json, error: str | None, url: str) -> RunInfo:
    tags = {t["key"]: t["value"] for t in r["tags"]}
    started, ended = time(r["startTime"]), time(r["endTime"])
    return RunInfo(
        run_id=r["runId"],
        status=r["status"],
        job=r["jobName"],
        assets=["/".join(a["path"]) for a in r["assetSelection"] or []],
        partition=tags.get(PARTITION_TAG),
        created=time(r["creationTime"]) or datetime.now(UTC),
        started=started,
        ended=ended,
        duration_s=(ended - started).total_seconds() if started and ended else None,
        error=error,
        tags=tags,
        url=url,
        parent_run_id=r["parentRunId"],
    )


def asset_info(
    node: Json, by_partition: dict[tuple[str, str], list[AssetCheckStatus]], url: str
) -> AssetInfo:
    key: list[str] = node["assetKey"]["path"]
    checks: list[AssetCheckStatus] = []
    for c in checks_of(node):
        if c["partitionDefinition"] is not None:
            found = by_partition.get(("/".join(key), c["name"]))
            checks += found or [check_status(c["name"], c["description"], None)]
        else:
            execution = c["executionForLatestMaterialization"]
            checks.append(check_status(c["name"], c["description"], execution))
    last = (node["assetMaterializations"] or [None])[0]
    partition_keys = list(node["partitionKeys"]) if node["isPartitioned"] else []
    return AssetInfo(
        key=key,
        last_materialized=time(float(last["timestamp"]) / 1000) if last else None,
        last_run_id=(last["runId"] or None) if last else None,
        checks=checks,
        partitions=len(partition_keys) if node["isPartitioned"] else None,
        description=node["description"],
        url=url,
        partition_keys=partition_keys,
        last_partition=last["partition"] if last else None,
        materializable=bool(node["isMaterializable"]),
    )


def sensor_info(s: Json) -> SensorInfo:
    state = s["sensorState"]
    tick = state["ticks"][0] if state["ticks"] else None
    return SensorInfo(
        name=s["name"],
        status=state["status"],
        last_tick=time(tick["timestamp"]) if tick else None,
        last_tick_status=tick["status"] if tick else None,
        error=(tick["error"] or {}).get("message") if tick else None,
    )


def daemon_info(d: Json) -> DaemonInfo:
    return DaemonInfo(
        type=d["daemonType"],
        healthy=bool(d["healthy"]),
        last_heartbeat=time(d["lastHeartbeatTime"]),
        error="\n".join(e["message"] for e in d["lastHeartbeatErrors"]) or None,
    )


def checks_of(node: Json) -> list[Json]:
    checks = node.get("assetChecksOrError") or {}
    return list(checks.get("checks", [])) if checks.get("__typename") == "AssetChecks" else []


def check_status(name: str, description: str | None, execution: Json | None) -> AssetCheckStatus:
    if execution is None:
        return AssetCheckStatus(name, None, None, description, None)
    evaluation = execution["evaluation"]
    if evaluation is None:  # in progress, skipped, or the check itself crashed
        crashed = execution["status"] == "EXECUTION_FAILED"
        return AssetCheckStatus(
            name,
            False if crashed else None,
            None,
            "The check did not run to completion." if crashed else description,
            time(execution["timestamp"]),
            execution["partition"],
            execution["runId"],
        )
    return AssetCheckStatus(
        name=name,
        passed=bool(evaluation["success"]),
        severity=evaluation["severity"],
        description=evaluation["description"] or description,
        when=time(evaluation["timestamp"]),
        partition=execution["partition"],
        run_id=execution["runId"],
    )


def failure_text(connection: Json) -> str | None:
    """The failed steps' own errors (a `dg.Failure`'s description, or the exception under
    Dagster's step wrapper), else the run failure's message."""
    events = connection.get("events") or []
    steps = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    texts = []
    for event in steps:
        text = (event["failureMetadata"] or {}).get("description") or _error_text(event["error"])
        if text:
            texts.append(f"{event['stepKey']}: {text}" if len(steps) > 1 else text)
    if texts:
        return "\n".join(texts)
    for event in events:
        if event["__typename"] == "RunFailureEvent":
            return _error_text(event["error"]) or event["message"] or None
    return None


def _error_text(error: Json | None) -> str | None:
    if not error:
        return None
    if error["className"] == _STEP_ERROR_WRAPPER and error.get("cause"):
        error = error["cause"]
    return strip_class(error["message"], error.get("className")).strip() or None


def strip_class(message: str, class_name: str | None = None) -> str:
    """`lakehouse.errors.QueryError: Could not build ...` → `Could not build ...`."""
    head, sep, rest = message.partition(": ")
    looks_like_class = (
        head.endswith(class_name)
        if class_name
        else "." in head or head.endswith(("Error", "Exception", "Failure"))
    )
    if sep and " " not in head and looks_like_class:
        return rest
    return message


def time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


# dagster 1.13 (pinned) describes a SpecificPartitionsPartitionMapping this way; silver is one
# asset partitioned by dataset, so that list is what a gold step reads.
_SPECIFIC_PARTITIONS = "SpecificPartitionsPartitionMapping"
_PARTITIONS_RE = re.compile(r"upstream partitions: (\[.*\])\s*$")


def step_info(node: Json, latest: Json | None, url: str) -> StepInfo:
    """An asset node (queries.STEPS) and its latest info (queries.LATEST_RUNS) → a step."""
    meta = {}
    for entry in node.get("metadataEntries") or []:
        value = entry.get("text") or entry.get("path") or entry.get("url")
        if isinstance(value, str):
            meta[entry["label"]] = value
    run = (latest or {}).get("latestRun") or {}
    materialization = (latest or {}).get("latestMaterialization") or {}
    when = run.get("endTime") or run.get("startTime") or run.get("creationTime")
    stamp = materialization.get("timestamp")
    status = run.get("status")
    if status not in (None, *IN_FLIGHT) and run.get("runId") == materialization.get("runId"):
        status = "SUCCESS"  # this step built; another step of the same run may have failed
    return StepInfo(
        key=list(node["assetKey"]["path"]),
        kinds=frozenset(node.get("kinds") or ()),
        description=node.get("description"),
        inputs=sorted({i for d in node.get("dependencies") or [] for i in _inputs(d)}),
        metadata=meta,
        url=url,
        last_run_id=run.get("runId"),
        last_run_status=status,
        last_run_time=time(when),
        last_materialized=time(float(stamp) / 1000) if stamp else None,
    )


def _inputs(dependency: Json) -> list[str]:
    """The tables one dependency stands for: `layer.table`, or each dataset of a partitioned
    layer asset the step reads (`silver.orders`)."""
    key = dependency["asset"]["assetKey"]["path"]
    mapping = dependency.get("partitionMapping") or {}
    if mapping.get("className") == _SPECIFIC_PARTITIONS:
        found = _PARTITIONS_RE.search(mapping.get("description") or "")
        try:
            partitions = ast.literal_eval(found.group(1)) if found else None
        except (ValueError, SyntaxError):
            partitions = None
        if isinstance(partitions, list):
            return [f"{key[0]}.{p}" for p in partitions]
    return [".".join(key)]
