"""The scale path, checked: docs/scale-out.md and the run-launcher configuration in deploy/.

The shipped Dagster instance files pass Dagster's own config validation and build their real run
launchers (dagster-docker, dagster-k8s); the compose override, the Docker launcher's run
containers and the Helm values agree with docker-compose.yml and with each other; the page names
only settings, files and versions that exist. No Docker engine, cluster or Helm runs here.
"""

import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.launcher import RunLauncher
from dagster._serdes.config_class import ConfigurableClass, ConfigurableClassData
from dagster_docker import DockerRunLauncher
from dagster_k8s import K8sRunLauncher

from lakehouse import Settings
from pipelines.serve import LOCATION

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEPLOY = ROOT / "deploy"
PAGE = ROOT / "docs" / "scale-out.md"
POSTGRES_YAML = DEPLOY / "dagster" / "dagster.postgres.yaml"
DOCKER_YAML = DEPLOY / "dagster" / "dagster.docker.yaml"
K8S_YAML = DEPLOY / "dagster" / "dagster.k8s.yaml"
OVERRIDE = DEPLOY / "docker" / "compose.run-launcher.yaml"
LAUNCHERS_DOCKERFILE = DEPLOY / "docker" / "Dockerfile.launchers"
HELM_VALUES = DEPLOY / "k8s" / "values.yaml"
HOME = "/opt/dagster/home"
DAGSTER_SERVICES = {"dagster-code-server", "dagster-webserver", "dagster-daemon"}
ENV_NAMES = {f"RATATOUILLE_{name.upper()}" for name in Settings.model_fields}
# Typed as what the daemon sees: classes with a config schema (the libraries leave theirs bare).
LAUNCHERS: dict[Path, type[ConfigurableClass]] = {
    DOCKER_YAML: DockerRunLauncher,
    K8S_YAML: K8sRunLauncher,
}

# Where runs stop being a process of the code server, these may differ from the compose file's
# instance; anything else drifting apart is a mistake.
ALLOWED_TO_DIFFER = {
    ("run_launcher",),
    ("run_monitoring", "start_timeout_seconds"),
    ("concurrency", "runs", "max_concurrent_runs"),
}

# The chart's k8sRunLauncher values (camelCase) → the launcher's config fields.
HELM_LAUNCHER_FIELDS = {
    "imagePullPolicy": "image_pull_policy",
    "loadInclusterConfig": "load_incluster_config",
    "envConfigMaps": "env_config_maps",
    "envSecrets": "env_secrets",
    "envVars": "env_vars",
    "volumes": "volumes",
    "volumeMounts": "volume_mounts",
    "resources": "resources",
    "failPodOnRunFailure": "fail_pod_on_run_failure",
}

# A kubeconfig that parses: K8sRunLauncher loads one when it is built (it connects later).
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: test, user: {token: test}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
"""


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


COMPOSE: dict[str, Any] = load(ROOT / "docker-compose.yml")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in service.get("environment", {}).items()}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path → source (a named volume, a host path or a path relative to the repo)."""
    return {spec.split(":")[1]: spec.split(":")[0] for spec in service.get("volumes", [])}


def without(config: dict[str, Any], paths: set[tuple[str, ...]]) -> dict[str, Any]:
    """A deep copy of `config` with the keys at `paths` taken out."""
    copy: dict[str, Any] = yaml.safe_load(yaml.safe_dump(config))
    for path in paths:
        node = copy
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return copy


def pin(text: str, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, re.M)
    assert match, f"{package} is not pinned"
    return match.group(1)


@pytest.fixture
def pg_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the instance files read with `{env: ...}`; Dagster resolves them while validating."""
    for name in ("USERNAME", "PASSWORD", "HOST", "DB"):
        monkeypatch.setenv(f"DAGSTER_PG_{name}", "dagster")
    monkeypatch.setenv("DAGSTER_PG_PORT", "5432")


def instance_config(path: Path, tmp_path: Path) -> dict[str, Any]:
    """The file as webserver and daemon load it from $DAGSTER_HOME, through Dagster's schema."""
    shutil.copy(path, tmp_path / "dagster.yaml")
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    return dict(config)


@pytest.mark.usefixtures("pg_vars")
@pytest.mark.parametrize("path", list(LAUNCHERS), ids=["docker", "k8s"])
def test_instance_files_pass_dagsters_validation_and_build_their_launcher(
    path: Path, tmp_path: Path
) -> None:
    """The instance schema first, then the launcher's own schema (the instance schema lets any
    `config:` through), then the launcher built from it as the daemon builds it."""
    launcher = instance_config(path, tmp_path)["run_launcher"]
    cls = LAUNCHERS[path]
    assert (launcher["module"], launcher["class"]) == (cls.__module__.split(".")[0], cls.__name__)
    result = process_config(cls.config_type(), launcher["config"])
    assert result.success, result.errors
    config = dict(launcher["config"])
    if cls is K8sRunLauncher:  # outside a cluster: the same config, credentials from a file
        (tmp_path / "kubeconfig").write_text(KUBECONFIG)
        config |= {"load_incluster_config": False, "kubeconfig_file": str(tmp_path / "kubeconfig")}
    built = ConfigurableClassData(launcher["module"], launcher["class"], yaml.dump(config))
    instance = built.rehydrate()
    assert isinstance(instance, RunLauncher)
    if isinstance(instance, DockerRunLauncher):
        assert instance.image == launcher["config"]["image"]
        assert instance.networks == [launcher["config"]["network"]]
    else:
        assert isinstance(instance, K8sRunLauncher)
        assert instance.job_namespace == launcher["config"]["job_namespace"]
        assert instance.instance_config_map == launcher["config"]["instance_config_map"]
        assert instance.dagster_home == HOME


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        (DOCKER_YAML, "netwrok", "ratatouille_default"),
        (DOCKER_YAML, "env_vars", "RATATOUILLE_STORAGE"),
        (K8S_YAML, "job_namspace", "ratatouille"),
        (K8S_YAML, "load_incluster_config", "yes"),
    ],
)
def test_a_typo_in_a_launcher_config_is_refused(path: Path, key: str, value: str) -> None:
    """Why the launcher packages are dev requirements: a misspelt key and a wrong type fail
    here, not at the first run in production."""
    config = dict(load(path)["run_launcher"]["config"]) | {key: value}
    assert not process_config(LAUNCHERS[path].config_type(), config).success


@pytest.mark.parametrize("path", list(LAUNCHERS), ids=["docker", "k8s"])
def test_instance_files_differ_from_compose_only_where_runs_leave_the_process(path: Path) -> None:
    scaled, compose = load(path), load(POSTGRES_YAML)
    assert without(scaled, ALLOWED_TO_DIFFER) == without(compose, ALLOWED_TO_DIFFER)
    assert "run_launcher" not in compose
    # Runs of one table still build one at a time, whatever runs beside them.
    assert scaled["concurrency"]["pools"] == {"default_limit": 1}


def test_docker_run_containers_get_what_the_code_server_has() -> None:
    """Runs used to execute inside dagster-code-server: their containers need its settings,
    its network and its volumes, or a run reads another lake than the sensors saw."""
    launcher = load(DOCKER_YAML)["run_launcher"]["config"]
    code = SERVICES["dagster-code-server"]
    assert sorted(launcher["env_vars"]) == sorted(environment(code))
    assert launcher["network"] == f"{COMPOSE['name']}_default"
    named = {
        target: f"{COMPOSE['name']}_{source}"
        for target, source in mounts(code).items()
        if source in COMPOSE["volumes"]
    }
    volumes = [spec.split(":") for spec in launcher["container_kwargs"]["volumes"]]
    assert {target: source for source, target in volumes} == named
    assert launcher["image"] == load(OVERRIDE)["x-launcher-image"]["image"]


def test_compose_override_changes_only_the_dagster_services() -> None:
    out = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", OVERRIDE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    override: dict[str, dict[str, Any]] = load(OVERRIDE)["services"]
    assert set(override) == DAGSTER_SERVICES
    instance = f"./{DOCKER_YAML.relative_to(ROOT)}"
    for name, service in override.items():
        assert service["image"] == "ratatouille:launchers", name
        assert service["build"]["dockerfile"] == str(LAUNCHERS_DOCKERFILE.relative_to(ROOT))
        # Same container path as the base file's mount, so compose replaces it.
        assert mounts(SERVICES[name])[f"{HOME}/dagster.yaml"].endswith("dagster.postgres.yaml")
        assert mounts(service)[f"{HOME}/dagster.yaml"] == instance, name
        socket = "/var/run/docker.sock" in mounts(service)
        assert socket == (name == "dagster-daemon"), f"{name}: only the daemon reaches Docker"
    # The daemon hands run containers the code server's settings by name: it holds them all.
    daemon = environment(SERVICES["dagster-daemon"]) | environment(override["dagster-daemon"])
    assert daemon == environment(SERVICES["dagster-code-server"])


def test_launcher_image_installs_the_pinned_launchers() -> None:
    dockerfile = LAUNCHERS_DOCKERFILE.read_text()
    dev = (ROOT / "requirements-dev.txt").read_text()
    runtime = (ROOT / "requirements.txt").read_text()
    for package in ("dagster-docker", "dagster-k8s"):
        assert f"{package}=={pin(dev, package)}" in dockerfile
        # The dagster family moves in lockstep: libraries 0.29.x go with dagster 1.13.x.
        assert pin(dev, package) == pin(runtime, "dagstermill")
    assert re.search(r"^USER 10001:10001\s*\Z", dockerfile, re.M), "ends as the app's user"
    out = subprocess.run(
        [BIN / "hadolint", LAUNCHERS_DOCKERFILE], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_helm_values_serve_the_same_code_location_and_instance_as_the_k8s_file() -> None:
    values, k8s = load(HELM_VALUES), load(K8S_YAML)
    launcher = k8s["run_launcher"]["config"]
    [deployment] = values["dagster-user-deployments"]["deployments"]
    command = SERVICES["dagster-code-server"]["command"]
    assert deployment["name"] == LOCATION  # sensor cursors are keyed by the location's name
    # Compose's code server is Dagster's with warm run workers; the chart runs Dagster's own
    # (each run is a pod there: nothing to keep warm) with the same arguments.
    assert command[:5] == ["python", "-m", "pipelines.code_server", "code-server", "start"]
    assert deployment["codeServerArgs"] == command[5:9]
    assert command[5:9] == ["-m", "pipelines.definitions", "-a", "defs"]
    assert str(deployment["port"]) == command[command.index("--port") + 1]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    # What the chart passes run pods through the deployment, the k8s file gives the launcher.
    assert [m["name"] for m in deployment["envConfigMaps"]] == launcher["env_config_maps"]
    assert [s["name"] for s in deployment["envSecrets"]] == launcher["env_secrets"]
    assert deployment["volumes"] == launcher["volumes"]
    assert deployment["volumeMounts"] == launcher["volume_mounts"]
    assert values["global"]["postgresqlSecretName"] == launcher["postgres_password_secret"]
    assert values["global"]["dagsterHome"] == launcher["dagster_home"] == HOME

    helm = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    fields = cast("Mapping[str, Any]", LAUNCHERS[K8S_YAML].config_type())
    assert set(HELM_LAUNCHER_FIELDS.values()) <= set(fields)
    assert set(helm) <= set(HELM_LAUNCHER_FIELDS), set(helm) - set(HELM_LAUNCHER_FIELDS)
    for key in ("imagePullPolicy", "loadInclusterConfig", "resources", "failPodOnRunFailure"):
        assert helm[key] == launcher[HELM_LAUNCHER_FIELDS[key]], key

    assert values["telemetry"] == k8s["telemetry"]
    pg = values["postgresql"]
    db = k8s["storage"]["postgres"]["postgres_db"]
    assert pg["enabled"] is False
    assert (pg["postgresqlScheme"], pg["postgresqlParams"]) == (db["scheme"], db["params"])
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    coordinator = k8s["run_coordinator"]["config"]
    assert queued["dequeueIntervalSeconds"] == coordinator["dequeue_interval_seconds"]
    assert queued["dequeueUseThreads"] == coordinator["dequeue_use_threads"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    for helm_key, key in [
        ("enabled", "enabled"),
        ("startTimeoutSeconds", "start_timeout_seconds"),
        ("cancelTimeoutSeconds", "cancel_timeout_seconds"),
        ("pollIntervalSeconds", "poll_interval_seconds"),
        ("freeSlotsAfterRunEndSeconds", "free_slots_after_run_end_seconds"),
        ("maxRuntimeSeconds", "max_runtime_seconds"),
    ]:
        assert monitoring[helm_key] == k8s["run_monitoring"][key], helm_key
    sensors = values["dagsterDaemon"]["sensors"]
    assert (sensors["useThreads"], sensors["numWorkers"]) == tuple(k8s["sensors"].values())
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    assert concurrency["pools"]["defaultLimit"] == k8s["concurrency"]["pools"]["default_limit"]
    assert (
        concurrency["runs"]["maxConcurrentRuns"]
        == k8s["concurrency"]["runs"]["max_concurrent_runs"]
    )
    retention = values["retention"]
    assert (
        retention["schedule"]["purgeAfterDays"] == k8s["retention"]["schedule"]["purge_after_days"]
    )
    assert retention["sensor"]["purgeAfterDays"] == k8s["retention"]["sensor"]["purge_after_days"]
    # The chart's version is Dagster's: the header installs the one requirements.txt pins.
    dagster = pin((ROOT / "requirements.txt").read_text(), "dagster")
    assert f"--version {dagster}" in HELM_VALUES.read_text()


def test_page_names_only_real_settings_files_and_links() -> None:
    text = PAGE.read_text()
    settings = set(re.findall(r"RATATOUILLE_[A-Z0-9_]*[A-Z0-9]", text))
    assert settings, "the page says which settings change"
    assert settings <= ENV_NAMES, settings - ENV_NAMES
    paths = set(re.findall(r"\b(?:deploy|docs|tests|devtools)/[\w./-]*\w", text))
    # tests/interop/ is being written beside this change; everything else must exist now.
    missing = {p for p in paths if not (ROOT / p).exists() and not p.startswith("tests/interop")}
    assert missing == set()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (PAGE.parent / target).exists(), target
    # Every file this change ships is explained on the page.
    for shipped in (DOCKER_YAML, K8S_YAML, OVERRIDE, LAUNCHERS_DOCKERFILE, HELM_VALUES):
        assert str(shipped.relative_to(ROOT)) in text, shipped
    for page in (ROOT / "README.md", ROOT / "docs" / "deploy.md"):
        assert "scale-out.md" in page.read_text(), page
    # The versions the page names are the pinned ones.
    runtime = (ROOT / "requirements.txt").read_text()
    assert f"dagster {pin(runtime, 'dagster')}" in text
    dev = (ROOT / "requirements-dev.txt").read_text()
    for package in ("dagster-docker", "dagster-k8s"):
        assert f"{package}=={pin(dev, package)}" in text
