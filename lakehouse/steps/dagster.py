"""The few Dagster calls the library makes, over the webserver's GraphQL API (it never imports
Dagster): which gold assets exist, reload the code, start a build (`promote`), and start a
dataset's silver and gold the moment its data arrives (uploads, the landing watcher)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

LOCATION = "ratatouille"  # pipelines.serve.LOCATION
REPOSITORY = "__repository__"
ASSET_JOB = "__ASSET_JOB"
RELOAD_S = 60.0
LAUNCHED_FROM_TAG = "ratatouille/launched_from"
DATASET_TAG = "ratatouille/dataset"
LANDING_FILE_TAG = "ratatouille/landing_file"
PARTITION_TAG = "dagster/partition"
PARTITIONS = "datasets"  # pipelines.keys.datasets
SILVER = ["silver", "datasets"]  # pipelines.keys.SILVER
SILVER_OP = "silver__datasets"
READS = "reads"  # a gold asset's metadata: the lake tables it reads, `layer.name, ...`
IN_FLIGHT = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED"]

_ASSETS = """
{ assetNodes { assetKey { path } kinds
    metadataEntries { label
      ... on PathMetadataEntry { path } ... on TextMetadataEntry { text } } } }
"""
_ADD_PARTITION = """
mutation Add($repo: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) {
    __typename
    ... on Error { message }
  }
}
"""
_RUNS = """
query Runs($filter: RunsFilter!) {
  runsOrError(filter: $filter, limit: 50) {
    __typename
    ... on Runs { results { runId tags { key value } } }
    ... on Error { message }
  }
}
"""
_RELOAD = """
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
_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}
"""


class DagsterUnreachable(Exception):
    pass


class DagsterRefused(Exception):
    pass


@dataclass(frozen=True)
class GoldAsset:
    table: str
    kinds: tuple[str, ...]
    source: str | None  # the notebook or .sql file, where its metadata says


class Dagster:
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, query: str, variables: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", body, {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
        except (OSError, TimeoutError) as e:
            raise DagsterUnreachable(f"Dagster is not reachable at {self.url} ({e})") from e
        try:
            answer = json.loads(raw)
        except ValueError as e:
            raise DagsterUnreachable(f"{self.url} did not answer as Dagster does") from e
        if answer.get("errors"):
            raise DagsterRefused("; ".join(str(e.get("message")) for e in answer["errors"]))
        data = answer.get("data")
        if not isinstance(data, dict):
            raise DagsterUnreachable(f"{self.url} did not answer as Dagster does")
        return data

    def _gold_nodes(self) -> list[tuple[str, list[str], dict[str, str | None]]]:
        """(table, kinds, metadata) of each `gold/<table>` asset."""
        out = []
        for node in self._call(_ASSETS, {}, self.timeout_s)["assetNodes"]:
            path = node["assetKey"]["path"]
            if len(path) == 2 and path[0] == "gold":
                meta = {m["label"]: m.get("path") or m.get("text") for m in node["metadataEntries"]}
                out.append((path[1], node.get("kinds") or [], meta))
        return out

    def gold_assets(self) -> list[GoldAsset]:
        out = []
        for table, kinds, meta in self._gold_nodes():
            source = meta.get("notebook") or meta.get("path")
            out.append(GoldAsset(table, tuple(kinds), source))
        return out

    def reload(self) -> None:
        data = self._call(_RELOAD, {"name": LOCATION}, max(self.timeout_s, RELOAD_S))
        result = data["reloadRepositoryLocation"]
        if result.get("__typename") != "WorkspaceLocationEntry":
            raise DagsterRefused(result.get("message") or result.get("__typename"))
        loaded = result.get("locationOrLoadError") or {}
        if loaded.get("__typename") == "PythonError":
            raise DagsterRefused(f"the pipeline code does not load: {loaded.get('message')}")

    def materialize(self, table: str) -> str:
        return self._launch([["gold", table]], {LAUNCHED_FROM_TAG: "promote"})

    def _launch(
        self,
        assets: list[list[str]],
        tags: dict[str, str],
        run_config: dict[str, Any] | None = None,
    ) -> str:
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": ASSET_JOB,
                "assetSelection": [{"path": path} for path in assets],
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
            "runConfigData": run_config or {},
        }
        result = self._call(_LAUNCH, {"params": params}, self.timeout_s)["launchRun"]
        if result.get("__typename") != "LaunchRunSuccess":
            raise DagsterRefused(result.get("message") or result.get("__typename"))
        return str(result["run"]["runId"])

    # -- fresh data ---------------------------------------------------------------------------
    def readers(self, dataset: str) -> list[list[str]]:
        """The gold assets that read `silver.<dataset>`, directly or through other gold
        tables, from the `reads` each one's metadata lists."""
        reads = {
            table: {t.strip() for t in str(meta[READS]).split(",")}
            for table, _, meta in self._gold_nodes()
            if meta.get(READS)
        }
        built, picked = {f"silver.{dataset}"}, set()
        grew = True
        while grew:  # a fixed point: gold reading gold follows its inputs into the run
            grew = False
            for table, tables in reads.items():
                if table not in picked and tables & built:
                    picked.add(table)
                    built.add(f"gold.{table}")
                    grew = True
        return [["gold", table] for table in sorted(picked)]

    def add_dataset(self, dataset: str) -> None:
        """Make `dataset` a partition of bronze and silver (a no-op if it is one)."""
        repo = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        variables = {"repo": repo, "name": PARTITIONS, "key": dataset}
        result = self._call(_ADD_PARTITION, variables, self.timeout_s)["addDynamicPartition"]
        kind = result.get("__typename")
        if kind not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
            raise DagsterRefused(result.get("message") or kind)

    def landing_runs(self, key: str) -> list[str]:
        """Runs queued or running that ingest the landing file `key`."""
        flt = {"statuses": IN_FLIGHT, "tags": [{"key": LANDING_FILE_TAG, "value": key[:200]}]}
        result = self._call(_RUNS, {"filter": flt}, self.timeout_s)["runsOrError"]
        if result.get("__typename") != "Runs":
            raise DagsterRefused(result.get("message") or result.get("__typename"))
        return [str(r["runId"]) for r in result["results"]]

    def build_dataset(self, dataset: str, *, landing_file: str | None = None, by: str) -> str:
        """Start one run that builds `silver.<dataset>` (ingesting `landing_file` first, if
        given) and every gold table reading it; return its id. Runs of one dataset queue one
        behind the other (the run queue's limit on the partition tag); different datasets run
        side by side."""
        self.add_dataset(dataset)
        tags = {PARTITION_TAG: dataset, DATASET_TAG: dataset, LAUNCHED_FROM_TAG: by}
        config = None
        if landing_file:
            tags[LANDING_FILE_TAG] = landing_file[:200]
            config = {"ops": {SILVER_OP: {"config": {"landing_file": landing_file}}}}
        return self._launch([SILVER, *self.readers(dataset)], tags, config)
