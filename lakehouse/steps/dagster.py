"""The few Dagster calls `promote` makes, over the webserver's GraphQL API (the library never
imports Dagster): which gold assets exist, reload the code, start a build."""

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

_ASSETS = """
{ assetNodes { assetKey { path } kinds
    metadataEntries { label
      ... on PathMetadataEntry { path } ... on TextMetadataEntry { text } } } }
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

    def gold_assets(self) -> list[GoldAsset]:
        out = []
        for node in self._call(_ASSETS, {}, self.timeout_s)["assetNodes"]:
            path = node["assetKey"]["path"]
            if len(path) != 2 or path[0] != "gold":
                continue
            meta = {m["label"]: m.get("path") or m.get("text") for m in node["metadataEntries"]}
            source = meta.get("notebook") or meta.get("path")
            out.append(GoldAsset(path[1], tuple(node.get("kinds") or ()), source))
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
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": ASSET_JOB,
                "assetSelection": [{"path": ["gold", table]}],
            },
            "executionMetadata": {"tags": [{"key": LAUNCHED_FROM_TAG, "value": "promote"}]},
        }
        result = self._call(_LAUNCH, {"params": params}, self.timeout_s)["launchRun"]
        if result.get("__typename") != "LaunchRunSuccess":
            raise DagsterRefused(result.get("message") or result.get("__typename"))
        return str(result["run"]["runId"])
