"""Dagster's GraphQL API over HTTP: the app's only way to see and start pipeline runs.

The app never imports dagster (an import-linter contract). The query shapes follow the schema
of the installed `dagster_graphql` (1.13.27); every failure becomes a `DagsterError` with a
title and a message a person can act on, `DagsterUnavailable` when nothing answers.
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

LOCATION = "ratatouille"  # pipelines.serve.LOCATION; sensor cursors are keyed by it
REPOSITORY = "__repository__"  # the name Dagster gives the repository of a `Definitions`
ASSET_JOB = "__ASSET_JOB"  # the implicit job that materializes any asset selection
PARTITION_TAG = "dagster/partition"
LAUNCHED_FROM_TAG = "ratatouille/launched_from"
RELOAD_S = 60.0  # a reload re-imports the code: seconds when runs are starting beside it
IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
_ERRORS_CACHED = 500  # failed runs whose error text is remembered (it never changes)
_STEP_ERROR_WRAPPER = "DagsterExecutionStepExecutionError"  # the real error is its cause

Json = dict[str, Any]


class DagsterError(Exception):
    """Dagster answered, but not with what was asked; `title` is a headline, `msg` the detail."""

    def __init__(self, msg: str, title: str = "Dagster could not do this") -> None:
        super().__init__(msg)
        self.msg = msg
        self.title = title

    def __str__(self) -> str:
        return f"{self.title}: {self.msg}"


class DagsterUnavailable(DagsterError):
    """Nothing (or something that is not Dagster's webserver) answers at the URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"Dagster is not reachable at {url}: {reason}", title="Dagster is not reachable"
        )
        self.url = url
        self.reason = reason

    def __str__(self) -> str:
        return self.msg


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str  # Dagster's RunStatus: QUEUED, STARTED, SUCCESS, FAILURE, CANCELED, ...
    job: str
    assets: list[str]  # "layer/name" of the selected assets; empty for op jobs
    partition: str | None
    created: datetime
    started: datetime | None
    ended: datetime | None
    duration_s: float | None  # from start to end; None until it ends
    error: str | None  # why a failed run failed (the step's own error, not Dagster's wrapper)
    tags: dict[str, str]
    url: str
    parent_run_id: str | None = None  # set on re-executions


@dataclass(frozen=True)
class CheckInfo:
    name: str
    passed: bool | None  # None: not evaluated for the latest materialization (yet)
    severity: str | None  # ERROR or WARN
    description: str | None  # what the evaluation found, else what the check checks
    when: datetime | None
    partition: str | None = None  # partitioned checks (silver) report one result per dataset
    run_id: str | None = None


@dataclass(frozen=True)
class AssetInfo:
    key: list[str]
    last_materialized: datetime | None
    last_run_id: str | None  # None also for events reported by a sensor, outside any run
    checks: list[CheckInfo]
    partitions: int | None  # None for unpartitioned assets
    description: str | None
    url: str
    partition_keys: list[str] = field(default_factory=list)
    last_partition: str | None = None
    materializable: bool = True  # False for bronze: ingest writes it, a sensor reports it

    @property
    def name(self) -> str:
        return "/".join(self.key)


@dataclass(frozen=True)
class SensorInfo:
    name: str
    status: str  # RUNNING or STOPPED
    last_tick: datetime | None
    last_tick_status: str | None  # SUCCESS, SKIPPED, FAILURE, STARTED
    error: str | None


@dataclass(frozen=True)
class DaemonInfo:
    type: str
    healthy: bool
    last_heartbeat: datetime | None
    error: str | None


_ERROR_FIELDS = "message className cause { message className }"

RUN_FIELDS = """
fragment RunFields on Run {
  runId status jobName creationTime startTime endTime parentRunId
  tags { key value }
  assetSelection { path }
}
"""

RUNS = (
    """
query Runs($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs { results { ...RunFields } }
    ... on Error { message }
  }
}
"""
    + RUN_FIELDS
)

RUN_ERRORS_FIELDS = f"""
  __typename
  ... on EventConnection {{
    events {{
      __typename
      ... on ExecutionStepFailureEvent {{
        stepKey failureMetadata {{ description }} error {{ {_ERROR_FIELDS} }}
      }}
      ... on RunFailureEvent {{ message error {{ {_ERROR_FIELDS} }} }}
    }}
  }}
  ... on Error {{ message }}
"""

ASSETS = """
query Assets {
  assetNodes(loadMaterializations: true) {
    assetKey { path }
    description
    isPartitioned
    isMaterializable
    partitionKeys
    assetMaterializations(limit: 1) { timestamp runId partition }
    assetChecksOrError {
      __typename
      ... on AssetChecks {
        checks {
          name description
          partitionDefinition { description }
          executionForLatestMaterialization { ...Execution }
        }
      }
    }
  }
}
fragment Execution on AssetCheckExecution {
  runId status timestamp partition
  evaluation { success severity description timestamp }
}
"""

SENSORS = """
query Sensors($repo: RepositorySelector!) {
  sensorsOrError(repositorySelector: $repo) {
    __typename
    ... on Sensors {
      results {
        name
        sensorState { status ticks(limit: 1) { status timestamp error { message } } }
      }
    }
    ... on Error { message }
  }
}
"""

DAEMONS = """
query Daemons {
  instance {
    daemonHealth {
      allDaemonStatuses { daemonType required healthy lastHeartbeatTime
                          lastHeartbeatErrors { message } }
    }
  }
}
"""

_LAUNCH_RESULT = """
  __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on Error { message }
"""

LAUNCH = f"""
mutation Launch($params: ExecutionParams!) {{
  launchRun(executionParams: $params) {{ {_LAUNCH_RESULT} }}
}}
"""

REEXECUTE = f"""
mutation Reexecute($params: ReexecutionParams!) {{
  launchRunReexecution(reexecutionParams: $params) {{ {_LAUNCH_RESULT} }}
}}
"""

RELOAD = """
mutation Reload($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry {
      locationOrLoadError { __typename ... on PythonError { message } }
    }
    ... on Error { message }
  }
}
"""


class DagsterClient:
    """A few questions and commands for one Dagster webserver; safe to share between threads."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._errors: dict[str, str | None] = {}

    # -- links into the Dagster UI -------------------------------------------------------
    def run_url(self, run_id: str) -> str:
        return f"{self.url}/runs/{quote(run_id)}"

    def asset_url(self, key: list[str]) -> str:
        return f"{self.url}/assets/{'/'.join(quote(part, safe='') for part in key)}"

    # -- questions -------------------------------------------------------------------------
    def ping(self) -> bool:
        """Whether a Dagster webserver answers; never raises."""
        try:
            return bool(self.graphql("{ version }").get("version"))
        except DagsterError:
            return False

    def runs(
        self,
        *,
        limit: int = 50,
        since: datetime | None = None,
        tags: dict[str, str] | None = None,
        statuses: list[str] | None = None,
        run_ids: list[str] | None = None,
        with_errors: bool = True,
    ) -> list[RunInfo]:
        """Newest first. `since` filters on creation time; `with_errors=False` skips the
        event-log reads that find out why failed runs failed."""
        run_filter: Json = {}
        if since is not None:
            run_filter["createdAfter"] = since.timestamp()
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if statuses:
            run_filter["statuses"] = statuses
        if run_ids:
            run_filter["runIds"] = run_ids
        data = self.graphql(RUNS, {"filter": run_filter, "limit": limit})
        results = _unwrap(data["runsOrError"], "Runs", "Dagster could not list runs")["results"]
        failed = [r["runId"] for r in results if r["status"] == "FAILURE"]
        errors = self._run_errors(failed) if with_errors else {}
        return [self._run(r, errors.get(r["runId"])) for r in results]

    def run(self, run_id: str) -> RunInfo | None:
        found = self.runs(run_ids=[run_id], limit=1)
        return found[0] if found else None

    def assets(self) -> list[AssetInfo]:
        """Every asset with a definition, its latest materialization and check results."""
        nodes = self.graphql(ASSETS)["assetNodes"]
        partitioned_checks = [
            (n["assetKey"]["path"], c["name"])
            for n in nodes
            for c in _checks_of(n)
            if c["partitionDefinition"] is not None
        ]
        by_partition = self._partitioned_check_results(partitioned_checks)
        return [self._asset(n, by_partition) for n in nodes]

    def sensors(self) -> list[SensorInfo]:
        repo = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        data = self.graphql(SENSORS, {"repo": repo})
        results = _unwrap(data["sensorsOrError"], "Sensors", "Dagster could not list sensors")
        out = []
        for s in results["results"]:
            state = s["sensorState"]
            tick = state["ticks"][0] if state["ticks"] else None
            out.append(
                SensorInfo(
                    name=s["name"],
                    status=state["status"],
                    last_tick=_time(tick["timestamp"]) if tick else None,
                    last_tick_status=tick["status"] if tick else None,
                    error=(tick["error"] or {}).get("message") if tick else None,
                )
            )
        return out

    def daemons(self) -> list[DaemonInfo]:
        """The daemons this instance needs (sensors, run queue, schedules, ...)."""
        statuses = self.graphql(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return [
            DaemonInfo(
                type=d["daemonType"],
                healthy=bool(d["healthy"]),
                last_heartbeat=_time(d["lastHeartbeatTime"]),
                error="\n".join(e["message"] for e in d["lastHeartbeatErrors"]) or None,
            )
            for d in statuses
            if d["required"]
        ]

    # -- commands --------------------------------------------------------------------------
    def materialize(self, asset_key: list[str], partition: str | None = None) -> str:
        """Launch a run of one asset (one partition of a partitioned one); return its id."""
        tags = [{"key": LAUNCHED_FROM_TAG, "value": "app"}]
        if partition is not None:
            tags.append({"key": PARTITION_TAG, "value": partition})
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": ASSET_JOB,
                "assetSelection": [{"path": asset_key}],
            },
            "executionMetadata": {"tags": tags},
        }
        result = self.graphql(LAUNCH, {"params": params})["launchRun"]
        title = f"Dagster could not start a run of {'/'.join(asset_key)}"
        return str(_unwrap(result, "LaunchRunSuccess", title)["run"]["runId"])

    def reexecute(self, run_id: str, *, from_failure: bool = True) -> str:
        """Re-run a finished run (its failed steps, or all of them); return the new run's id."""
        params = {
            "parentRunId": run_id,
            "strategy": "FROM_FAILURE" if from_failure else "ALL_STEPS",
        }
        result = self.graphql(REEXECUTE, {"params": params})["launchRunReexecution"]
        title = f"Dagster could not re-run {run_id}"
        return str(_unwrap(result, "LaunchRunSuccess", title)["run"]["runId"])

    def reload(self) -> None:
        """Reload the code location, so new or changed models and notebook steps appear."""
        # The answer comes once the code server has re-imported the code: seconds, not ms.
        data = self.graphql(RELOAD, {"name": LOCATION}, timeout_s=max(self.timeout_s, RELOAD_S))
        result = data["reloadRepositoryLocation"]
        entry = _unwrap(result, "WorkspaceLocationEntry", "Dagster could not reload the code")
        loaded = entry.get("locationOrLoadError") or {}
        if loaded.get("__typename") == "PythonError":
            raise DagsterError(loaded["message"], title="The pipeline code does not load")

    # -- plumbing --------------------------------------------------------------------------
    def graphql(
        self, query: str, variables: Json | None = None, *, timeout_s: float | None = None
    ) -> Json:
        """POST one GraphQL document; return its `data`, or raise a readable error."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", body, {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            # Dagster answers 400 to a query its schema rejects and 500 when a resolver
            # raised, both with a GraphQL body; anything else is not Dagster speaking.
            raw = e.read()
            if not _is_graphql(raw):
                raise DagsterUnavailable(self.url, f"HTTP {e.code} {e.reason}") from e
        except urllib.error.URLError as e:
            raise DagsterUnavailable(self.url, str(e.reason)) from e
        except (TimeoutError, OSError) as e:
            raise DagsterUnavailable(self.url, str(e) or type(e).__name__) from e
        if errors := _graphql_errors(raw):
            raise DagsterError("\n".join(errors), title="Dagster rejected the request")
        try:
            data = json.loads(raw)["data"]
        except (ValueError, KeyError, TypeError) as e:
            reason = "the answer is not Dagster's (is this the Dagster webserver's URL?)"
            raise DagsterUnavailable(self.url, reason) from e
        if not isinstance(data, dict):
            raise DagsterError(f"Dagster answered {raw[:200]!r}", title="Unexpected answer")
        return data

    def _run(self, r: Json, error: str | None) -> RunInfo:
        tags = {t["key"]: t["value"] for t in r["tags"]}
        started, ended = _time(r["startTime"]), _time(r["endTime"])
        return RunInfo(
            run_id=r["runId"],
            status=r["status"],
            job=r["jobName"],
            assets=["/".join(a["path"]) for a in r["assetSelection"] or []],
            partition=tags.get(PARTITION_TAG),
            created=_time(r["creationTime"]) or datetime.now(UTC),
            started=started,
            ended=ended,
            duration_s=(ended - started).total_seconds() if started and ended else None,
            error=error,
            tags=tags,
            url=self.run_url(r["runId"]),
            parent_run_id=r["parentRunId"],
        )

    def _run_errors(self, run_ids: list[str]) -> dict[str, str | None]:
        """Why each failed run failed, read from its event log (one request for all)."""
        missing = [run_id for run_id in run_ids if run_id not in self._errors]
        if missing:
            params = ", ".join(f"$r{i}: ID!" for i in range(len(missing)))
            fields = "\n".join(
                f"r{i}: logsForRun(runId: $r{i}) {{ {RUN_ERRORS_FIELDS} }}"
                for i in range(len(missing))
            )
            data = self.graphql(
                f"query RunErrors({params}) {{ {fields} }}",
                {f"r{i}": run_id for i, run_id in enumerate(missing)},
            )
            if len(self._errors) > _ERRORS_CACHED:
                self._errors.clear()
            for i, run_id in enumerate(missing):
                self._errors[run_id] = _failure_text(data[f"r{i}"])
        return {run_id: self._errors.get(run_id) for run_id in run_ids}

    def _partitioned_check_results(
        self, checks: list[tuple[list[str], str]]
    ) -> dict[tuple[str, str], list[CheckInfo]]:
        """The latest result per partition of each partitioned check (one request for all)."""
        if not checks:
            return {}
        params = ", ".join(f"$k{i}: AssetKeyInput!, $c{i}: String!" for i in range(len(checks)))
        fields = "\n".join(
            f"x{i}: assetCheckExecutions(assetKey: $k{i}, checkName: $c{i}, limit: 100)"
            " { ...Execution }"
            for i in range(len(checks))
        )
        variables: Json = {}
        for i, (key, name) in enumerate(checks):
            variables |= {f"k{i}": {"path": key}, f"c{i}": name}
        fragment = ASSETS[ASSETS.index("fragment Execution") :]
        data = self.graphql(f"query CheckResults({params}) {{ {fields} }}\n{fragment}", variables)
        out: dict[tuple[str, str], list[CheckInfo]] = {}
        for i, (key, name) in enumerate(checks):
            latest: dict[str | None, CheckInfo] = {}
            for execution in data[f"x{i}"]:  # newest first
                if execution["partition"] not in latest:
                    latest[execution["partition"]] = _check(name, None, execution)
            out["/".join(key), name] = sorted(latest.values(), key=lambda c: c.partition or "")
        return out

    def _asset(self, node: Json, by_partition: dict[tuple[str, str], list[CheckInfo]]) -> AssetInfo:
        key: list[str] = node["assetKey"]["path"]
        checks: list[CheckInfo] = []
        for c in _checks_of(node):
            if c["partitionDefinition"] is not None:
                found = by_partition.get(("/".join(key), c["name"]))
                checks += found or [_check(c["name"], c["description"], None)]
            else:
                execution = c["executionForLatestMaterialization"]
                checks.append(_check(c["name"], c["description"], execution))
        last = (node["assetMaterializations"] or [None])[0]
        partition_keys = list(node["partitionKeys"]) if node["isPartitioned"] else []
        return AssetInfo(
            key=key,
            last_materialized=_time(float(last["timestamp"]) / 1000) if last else None,
            last_run_id=(last["runId"] or None) if last else None,
            checks=checks,
            partitions=len(partition_keys) if node["isPartitioned"] else None,
            description=node["description"],
            url=self.asset_url(key),
            partition_keys=partition_keys,
            last_partition=last["partition"] if last else None,
            materializable=bool(node["isMaterializable"]),
        )


def _unwrap(result: Json, expected: str, title: str) -> Json:
    """A `...OrError` union: the expected member, or a DagsterError with Dagster's message."""
    if result.get("__typename") == expected:
        return result
    if "errors" in result:  # RunConfigValidationInvalid
        message = "\n".join(e["message"] for e in result["errors"])
    else:
        message = result.get("message") or f"Dagster answered {result.get('__typename')}"
    raise DagsterError(_strip_class(message).strip(), title=title)


def _is_graphql(raw: bytes) -> bool:
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    return isinstance(body, dict) and ("data" in body or "errors" in body)


def _graphql_errors(raw: bytes) -> list[str]:
    try:
        body = json.loads(raw)
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [str(e.get("message", e)) for e in errors or [] if isinstance(e, dict)]


def _checks_of(node: Json) -> list[Json]:
    checks = node.get("assetChecksOrError") or {}
    return list(checks.get("checks", [])) if checks.get("__typename") == "AssetChecks" else []


def _check(name: str, description: str | None, execution: Json | None) -> CheckInfo:
    if execution is None:
        return CheckInfo(name, None, None, description, None)
    evaluation = execution["evaluation"]
    if evaluation is None:  # in progress, skipped, or the check itself crashed
        crashed = execution["status"] == "EXECUTION_FAILED"
        return CheckInfo(
            name,
            False if crashed else None,
            None,
            "The check did not run to completion." if crashed else description,
            _time(execution["timestamp"]),
            execution["partition"],
            execution["runId"],
        )
    return CheckInfo(
        name=name,
        passed=bool(evaluation["success"]),
        severity=evaluation["severity"],
        description=evaluation["description"] or description,
        when=_time(evaluation["timestamp"]),
        partition=execution["partition"],
        run_id=execution["runId"],
    )


def _failure_text(connection: Json) -> str | None:
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
    return _strip_class(error["message"], error.get("className")).strip() or None


def _strip_class(message: str, class_name: str | None = None) -> str:
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


def _time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None
