"""One Dagster webserver over HTTP GraphQL: the app's only way to see and start pipeline runs.

The app never imports dagster (an import-linter contract). Every failure becomes a
`DagsterError` with a title and a message a person can act on, `DagsterUnavailable` when
nothing answers.
"""

import json
import urllib.error
import urllib.request
from datetime import datetime
from urllib.parse import quote

from streamlit_app.dagster_client import parse, queries, types
from streamlit_app.dagster_client.parse import PARTITION_TAG, Json

LOCATION = "ratatouille"  # pipelines.serve.LOCATION; sensor cursors are keyed by it
REPOSITORY = "__repository__"  # the name Dagster gives the repository of a `Definitions`
ASSET_JOB = "__ASSET_JOB"  # the implicit job that materializes any asset selection
LAUNCHED_FROM_TAG = "ratatouille/launched_from"
RELOAD_S = 60.0  # a reload re-imports the code: seconds when runs are starting beside it
_ERRORS_CACHED = 500  # failed runs whose error text is remembered (it never changes)


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
        except types.DagsterError:
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
    ) -> list[types.RunInfo]:
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
        data = self.graphql(queries.RUNS, {"filter": run_filter, "limit": limit})
        results = parse.unwrap(data["runsOrError"], "Runs", "Dagster could not list runs")[
            "results"
        ]
        failed = [r["runId"] for r in results if r["status"] == "FAILURE"]
        errors = self._run_errors(failed) if with_errors else {}
        return [
            parse.run_info(r, errors.get(r["runId"]), self.run_url(r["runId"])) for r in results
        ]

    def run(self, run_id: str) -> types.RunInfo | None:
        found = self.runs(run_ids=[run_id], limit=1)
        return found[0] if found else None

    def assets(self) -> list[types.AssetInfo]:
        """Every asset with a definition, its latest materialization and check results."""
        nodes = self.graphql(queries.ASSETS)["assetNodes"]
        partitioned_checks = [
            (n["assetKey"]["path"], c["name"])
            for n in nodes
            for c in parse.checks_of(n)
            if c["partitionDefinition"] is not None
        ]
        by_partition = self._partitioned_check_results(partitioned_checks)
        return [
            parse.asset_info(n, by_partition, self.asset_url(n["assetKey"]["path"])) for n in nodes
        ]

    def steps(self) -> list[types.StepInfo]:
        """Every gold step (`gold/<table>`: SQL models, notebooks, Python assets), with what it
        reads, its metadata and its latest run."""
        nodes = [
            n
            for n in self.graphql(queries.STEPS)["assetNodes"]
            if len(n["assetKey"]["path"]) == 2 and n["assetKey"]["path"][0] == "gold"
        ]
        if not nodes:
            return []
        keys = [{"path": n["assetKey"]["path"]} for n in nodes]
        latest = {
            tuple(i["assetKey"]["path"]): i
            for i in self.graphql(queries.LATEST_RUNS, {"keys": keys})["assetsLatestInfo"]
        }
        return [
            parse.step_info(
                n, latest.get(tuple(n["assetKey"]["path"])), self.asset_url(n["assetKey"]["path"])
            )
            for n in nodes
        ]

    def gold_tables_not_from_sql(self) -> list[str]:
        """Names of the gold assets that are not SQL models (Python assets, notebook steps):
        they own their names, so a new SQL model may not take one."""
        try:
            nodes = self.graphql(queries.ASSET_KINDS)["assetNodes"]
            return [
                n["assetKey"]["path"][1]
                for n in nodes
                if len(n["assetKey"]["path"]) == 2
                and n["assetKey"]["path"][0] == "gold"
                and "sql" not in (n.get("kinds") or [])
            ]
        except (KeyError, TypeError) as e:
            raise types.DagsterError(
                f"unexpected asset list: {e!r}", title="Unexpected answer"
            ) from e

    def sensors(self) -> list[types.SensorInfo]:
        repo = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        data = self.graphql(queries.SENSORS, {"repo": repo})
        results = parse.unwrap(data["sensorsOrError"], "Sensors", "Dagster could not list sensors")
        return [parse.sensor_info(s) for s in results["results"]]

    def daemons(self) -> list[types.DaemonInfo]:
        """The daemons this instance needs (sensors, run queue, schedules, ...)."""
        statuses = self.graphql(queries.DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return [parse.daemon_info(d) for d in statuses if d["required"]]

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
        result = self.graphql(queries.LAUNCH, {"params": params})["launchRun"]
        title = f"Dagster could not start a run of {'/'.join(asset_key)}"
        return str(parse.unwrap(result, "LaunchRunSuccess", title)["run"]["runId"])

    def reexecute(self, run_id: str, *, from_failure: bool = True) -> str:
        """Re-run a finished run (its failed steps, or all of them); return the new run's id."""
        params = {
            "parentRunId": run_id,
            "strategy": "FROM_FAILURE" if from_failure else "ALL_STEPS",
        }
        result = self.graphql(queries.REEXECUTE, {"params": params})["launchRunReexecution"]
        title = f"Dagster could not re-run {run_id}"
        return str(parse.unwrap(result, "LaunchRunSuccess", title)["run"]["runId"])

    def reload(self) -> None:
        """Reload the code location, so new or changed models and notebook steps appear."""
        # The answer comes once the code server has re-imported the code: seconds, not ms.
        data = self.graphql(
            queries.RELOAD, {"name": LOCATION}, timeout_s=max(self.timeout_s, RELOAD_S)
        )
        result = data["reloadRepositoryLocation"]
        entry = parse.unwrap(result, "WorkspaceLocationEntry", "Dagster could not reload the code")
        loaded = entry.get("locationOrLoadError") or {}
        if loaded.get("__typename") == "PythonError":
            raise types.DagsterError(loaded["message"], title="The pipeline code does not load")

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
            if not parse.is_graphql(raw):
                raise types.DagsterUnavailable(self.url, f"HTTP {e.code} {e.reason}") from e
        except urllib.error.URLError as e:
            raise types.DagsterUnavailable(self.url, str(e.reason)) from e
        except (TimeoutError, OSError) as e:
            raise types.DagsterUnavailable(self.url, str(e) or type(e).__name__) from e
        if errors := parse.graphql_errors(raw):
            raise types.DagsterError("\n".join(errors), title="Dagster rejected the request")
        try:
            data = json.loads(raw)["data"]
        except (ValueError, KeyError, TypeError) as e:
            reason = "the answer is not Dagster's (is this the Dagster webserver's URL?)"
            raise types.DagsterUnavailable(self.url, reason) from e
        if not isinstance(data, dict):
            raise types.DagsterError(f"Dagster answered {raw[:200]!r}", title="Unexpected answer")
        return data

    def _run_errors(self, run_ids: list[str]) -> dict[str, str | None]:
        """Why each failed run failed, read from its event log (one request for all)."""
        missing = [run_id for run_id in run_ids if run_id not in self._errors]
        if missing:
            data = self.graphql(
                queries.run_errors(len(missing)),
                {f"r{i}": run_id for i, run_id in enumerate(missing)},
            )
            if len(self._errors) > _ERRORS_CACHED:
                self._errors.clear()
            for i, run_id in enumerate(missing):
                self._errors[run_id] = parse.failure_text(data[f"r{i}"])
        return {run_id: self._errors.get(run_id) for run_id in run_ids}

    def _partitioned_check_results(
        self, checks: list[tuple[list[str], str]]
    ) -> dict[tuple[str, str], list[types.AssetCheckStatus]]:
        """The latest result per partition of each partitioned check (one request for all)."""
        if not checks:
            return {}
        variables: Json = {}
        for i, (key, name) in enumerate(checks):
            variables |= {f"k{i}": {"path": key}, f"c{i}": name}
        data = self.graphql(queries.check_results(len(checks)), variables)
        out: dict[tuple[str, str], list[types.AssetCheckStatus]] = {}
        for i, (key, name) in enumerate(checks):
            latest: dict[str | None, types.AssetCheckStatus] = {}
            for execution in data[f"x{i}"]:  # newest first
                if execution["partition"] not in latest:
                    latest[execution["partition"]] = parse.check_status(name, None, execution)
            out["/".join(key), name] = sorted(latest.values(), key=lambda c: c.partition or "")
        return out
