"""The GraphQL documents the client sends, shaped by the installed `dagster_graphql` (1.13.27)."""

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

EXECUTION_FRAGMENT = """fragment Execution on AssetCheckExecution {
  runId status timestamp partition
  evaluation { success severity description timestamp }
}
"""

ASSETS = (
    """
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
"""
    + EXECUTION_FRAGMENT
)

ASSET_KINDS = "{ assetNodes { assetKey { path } kinds } }"

# The gold steps (SQL models, notebooks, Python assets): what they are, read and came from.
STEPS = """
query Steps {
  assetNodes {
    assetKey { path }
    kinds
    description
    dependencies { asset { assetKey { path } } partitionMapping { className description } }
    metadataEntries {
      label
      ... on TextMetadataEntry { text }
      ... on PathMetadataEntry { path }
      ... on UrlMetadataEntry { url }
    }
  }
}
"""

LATEST_RUNS = """
query LatestRuns($keys: [AssetKeyInput!]!) {
  assetsLatestInfo(assetKeys: $keys) {
    assetKey { path }
    latestMaterialization { runId timestamp }
    latestRun { runId status creationTime startTime endTime }
  }
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


def run_errors(count: int) -> str:
    """One document reading the event logs of `count` runs, bound as `$r0`, `$r1`, ...;
    each answer under the alias `r<i>`."""
    params = ", ".join(f"$r{i}: ID!" for i in range(count))
    fields = "\n".join(
        f"r{i}: logsForRun(runId: $r{i}) {{ {RUN_ERRORS_FIELDS} }}" for i in range(count)
    )
    return f"query RunErrors({params}) {{ {fields} }}"


def check_results(count: int) -> str:
    """One document reading the latest executions of `count` checks, bound as `$k<i>` (asset
    key) and `$c<i>` (check name); each answer under the alias `x<i>`."""
    params = ", ".join(f"$k{i}: AssetKeyInput!, $c{i}: String!" for i in range(count))
    fields = "\n".join(
        f"x{i}: assetCheckExecutions(assetKey: $k{i}, checkName: $c{i}, limit: 100)"
        " { ...Execution }"
        for i in range(count)
    )
    return f"query CheckResults({params}) {{ {fields} }}\n{EXECUTION_FRAGMENT}"
