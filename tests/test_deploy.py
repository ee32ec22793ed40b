"""The compose stack and its image, checked statically: there is no Docker engine to run them.

The Compose spec's schema, hadolint and shellcheck; every service runs what `make run` runs;
every variable is a setting or documented in .env.example, every secret required; ports bind to
BIND_ADDRESS (127.0.0.1 unless told); images are pinned; services wait for healthy dependencies;
the preflight script refuses weak secrets, and minio-init can run twice.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakehouse import Settings
from pipelines import launch
from pipelines.serve import LOCATION, write_workspace

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ENV_NAMES = {f"RATATOUILLE_{name.upper()}" for name in Settings.model_fields}

APP_IMAGE = "ratatouille:local"
ONE_SHOT = {"preflight", "minio-init", "setup"}
LAKE_SERVICES = {"setup", "dagster-code-server", "streamlit", "jupyter", "uploads"}
# Compose service → the name DagsterStack.commands() gives its command.
DAGSTER_SERVICES = {
    "dagster-code-server": "code-server",
    "dagster-webserver": "webserver",
    "dagster-daemon": "daemon",
}
SECRETS = {
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
    "RATATOUILLE_S3_ACCESS_KEY",
    "RATATOUILLE_S3_SECRET_KEY",
    "RATATOUILLE_S3_QUERY_ACCESS_KEY",
    "RATATOUILLE_S3_QUERY_SECRET_KEY",
    "DAGSTER_PG_PASSWORD",
    "JUPYTER_TOKEN",
}
# `$$` is a literal $, `${NAME...}` and `$NAME` are interpolated (compose's rules).
REFERENCE = re.compile(
    r"\$\$|\$\{(?P<name>\w+)(?P<op>:?[-?])?(?P<arg>[^}]*)\}|\$(?P<bare>[A-Za-z_]\w*)"
)
BIND = re.compile(r"^\$\{(?:DAGSTER_)?BIND_ADDRESS:-127\.0\.0\.1\}:(\d+):(\d+)$")


def strings(node: Any) -> list[str]:
    """Every string in the parsed file (anchors resolved, comments gone), keys included."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings(k), *strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def references() -> list[re.Match[str]]:
    found = (m for text in strings(COMPOSE) for m in REFERENCE.finditer(text))
    return [m for m in found if m.group(0) != "$$"]


def defaults(text: str) -> str:
    """A compose value as interpolated with every optional variable unset."""
    return REFERENCE.sub(lambda m: "$" if m.group(0) == "$$" else m.group("arg"), text)


def run(*cmd: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, timeout=60, **kwargs
    )


def make_run() -> tuple[dict[str, str], list[str]]:
    """The Makefile's `?=` variables, and the `run` recipe's commands (continuations joined)."""
    text = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) \?= (.*)$", text, re.M))
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", text, re.M)
    assert recipe, "no run target in the Makefile"
    lines = recipe.group(1).replace("\\\n", " ").splitlines()
    return variables, [line.strip().lstrip("@") for line in lines]


def flags(words: list[str]) -> dict[str, str]:
    assert len(words) % 2 == 0 and all(w.startswith("--") for w in words[::2]), words
    return dict(zip(words[::2], words[1::2], strict=True))


@pytest.fixture
def launched(monkeypatch, tmp_path) -> tuple[launch.Launcher, dict[str, list[str]]]:
    """What `make run` starts: its launcher, with the Makefile's ports, and every command it
    would run (Dagster's three, app, jupyter), captured instead of started. The host is the
    one a container listens on; publishing binds BIND_ADDRESS."""
    variables, commands = make_run()
    line = next(c for c in commands if " -m pipelines.launch " in c)
    words = line.split(" -m pipelines.launch ")[1].split()
    words = [re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], w) for w in words]
    options = {k[2:].replace("-", "_"): v for k, v in flags(words).items()}
    args = argparse.Namespace(**{k: v if k == "host" else int(v) for k, v in options.items()})
    args.host = "0.0.0.0"
    monkeypatch.delenv("RATATOUILLE_MAX_UPLOAD_MB", raising=False)
    launcher = launch.Launcher(Settings(state_dir=tmp_path), args)
    started: dict[str, list[str]] = {}
    monkeypatch.setattr(launch, "_tail", lambda *a: None)
    monkeypatch.setattr(launcher.stack, "start", lambda *a, **kw: launcher.stack)
    monkeypatch.setattr(launcher, "_wait", lambda *a, **kw: None)
    monkeypatch.setattr(launcher, "_start", lambda name, cmd, env: started.update({name: cmd}))
    launcher.start()
    return launcher, started | launcher.stack.commands()


def normal(cmd: list[str], workspace: str) -> list[str]:
    """A command without its binary's folder, the repo's folder as the image's /app, the
    workspace file as a placeholder and compose variables at their defaults."""
    words = [defaults(w).replace(str(ROOT), "/app") for w in cmd]
    return [Path(words[0]).name, *("<workspace>" if w == workspace else w for w in words[1:])]


def environment(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service].get("environment", {}).items()}


def mounts(service: str) -> dict[str, str]:
    """Container path → source (a named volume, or a path relative to the repo)."""
    result = {}
    for spec in SERVICES[service].get("volumes", []):
        source, target, *_ = spec.split(":")
        result[target] = source
    return result


def test_compose_file_follows_the_compose_spec() -> None:
    out = run(
        BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "version" not in COMPOSE, "the Compose spec has no version key"


def test_dockerfile_passes_hadolint() -> None:
    out = run(BIN / "hadolint", "Dockerfile")
    assert out.returncode == 0, out.stdout + out.stderr


def test_shell_scripts_pass_shellcheck() -> None:
    out = run(BIN / "shellcheck", "deploy/preflight.sh", "deploy/minio/init.sh")
    assert out.returncode == 0, out.stdout + out.stderr


def test_services_run_the_commands_make_run_runs(launched, tmp_path) -> None:
    launcher, commands = launched
    workspace = "/app/deploy/dagster/workspace.compose.yaml"
    local_workspace = str(tmp_path / "dagster" / "workspace.yaml")
    services = {**DAGSTER_SERVICES, "streamlit": "app", "jupyter": "jupyter", "uploads": "uploads"}
    for service, name in services.items():
        expected = normal(commands[name], local_workspace)
        if name == "jupyter":
            expected.remove("--allow-root")  # make run may run as root; the image never does
        if name == "uploads":  # compose always has a password, so it may listen beyond loopback
            expected[expected.index("127.0.0.1")] = launcher.args.host
        assert normal(SERVICES[service]["command"], workspace) == expected, service
    # The upload limit: make run reads Settings, compose the same variable with its default.
    upload = environment("uploads")["RATATOUILLE_MAX_UPLOAD_MB"]
    assert defaults(upload) == str(Settings.model_fields["max_upload_mb"].default)
    # The compose workspace is what `make run` writes, pointed at the code server's service.
    ours = yaml.safe_load((ROOT / workspace.removeprefix("/app/")).read_text())
    theirs = write_workspace(tmp_path, "dagster-code-server", launcher.stack.grpc_port)
    assert ours == yaml.safe_load(theirs.read_text())
    assert ours["load_from"][0]["grpc_server"]["location_name"] == LOCATION
    assert "WORKDIR /app" in (ROOT / "Dockerfile").read_text()
    dagster_url = environment("streamlit")["RATATOUILLE_DAGSTER_URL"]
    assert dagster_url == f"http://dagster-webserver:{launcher.stack.port}"
    a = launcher.args
    # The app port is the login gate's; Streamlit is reached only through it.
    assert SERVICES["proxy"]["ports"] == [f"${{BIND_ADDRESS:-127.0.0.1}}:{a.app_port}:{a.app_port}"]
    assert "ports" not in SERVICES["streamlit"]
    assert SERVICES["dagster-webserver"]["ports"] == [
        f"${{DAGSTER_BIND_ADDRESS:-127.0.0.1}}:{a.dagster_port}:{a.dagster_port}"
    ]
    assert SERVICES["jupyter"]["ports"] == [
        f"${{BIND_ADDRESS:-127.0.0.1}}:{a.jupyter_port}:{a.jupyter_port}"
    ]
    assert SERVICES["uploads"]["ports"] == [
        f"${{BIND_ADDRESS:-127.0.0.1}}:{a.uploads_port}:{a.uploads_port}"
    ]


def test_links_point_where_make_run_and_compose_publish_the_app_and_jupyter(launched) -> None:
    """Dagster links a notebook run to the app, the app links notebook steps to JupyterLab."""
    launcher, _ = launched
    a, env = launcher.args, launcher.stack.env()
    assert env["RATATOUILLE_APP_URL"] == f"http://127.0.0.1:{a.app_port}"
    assert env["RATATOUILLE_JUPYTER_URL"] == f"http://127.0.0.1:{a.jupyter_port}"
    # Compose passes them through, empty meaning the defaults: where it publishes both.
    assert Settings.model_fields["app_url"].default == f"http://127.0.0.1:{a.app_port}"
    assert Settings.model_fields["jupyter_url"].default == f"http://127.0.0.1:{a.jupyter_port}"
    for service in ("dagster-code-server", "streamlit"):
        assert defaults(environment(service)["RATATOUILLE_APP_URL"]) == ""
    assert launcher.settings.uploads_url == f"http://127.0.0.1:{a.uploads_port}"
    assert Settings.model_fields["uploads_url"].default == f"http://127.0.0.1:{a.uploads_port}"
    named = launch.with_links(Settings(app_url="https://app.example"), "0.0.0.0", 1, 2, 3)
    assert (named.app_url, named.jupyter_url) == ("https://app.example", "http://127.0.0.1:2")
    assert named.uploads_url == "http://127.0.0.1:3"  # no password: this machine only


def test_setup_runs_what_make_run_runs_before_the_services() -> None:
    _, commands = make_run()
    first = [c.replace("$(BIN)/", "") for c in commands if c.startswith("$(BIN)/ratatouille ")]
    assert first == ["ratatouille doctor", "ratatouille migrate", "ratatouille demo"]
    shell, flag, script = SERVICES["setup"]["command"]
    assert (shell, flag) == ("bash", "-c")
    assert [part.strip() for part in script.split("&&")] == first


def test_every_ratatouille_variable_is_a_setting() -> None:
    texts = [COMPOSE_TEXT, *(p.read_text() for p in (ROOT / "deploy").rglob("*.sh"))]
    used = {name for text in texts for name in re.findall(r"RATATOUILLE_[A-Z0-9_]+", text)}
    assert used <= ENV_NAMES, used - ENV_NAMES


def test_lake_services_get_every_setting_but_the_ones_left_out_on_purpose() -> None:
    """A new setting fails here until someone decides what the stack does with it."""
    local_only = {"RATATOUILLE_LAKE_ROOT"}
    app_only = {
        "RATATOUILLE_DAGSTER_URL",
        "RATATOUILLE_APP_PASSWORD",
        "RATATOUILLE_APP_PASSWORD_HASH",
        "RATATOUILLE_APP_USER",
        "RATATOUILLE_APP_USERS_FILE",
        "RATATOUILLE_SESSION_SECRET",
        "RATATOUILLE_SESSION_HOURS",
        "RATATOUILLE_COOKIE_SECURE",
        "RATATOUILLE_TRUSTED_USER_HEADER",
    }
    for service in LAKE_SERVICES:
        env = environment(service)
        left_out = local_only if service in ("streamlit", "uploads") else local_only | app_only
        if service == "jupyter":  # "Promote to pipeline" reloads Dagster and links to it
            left_out -= {"RATATOUILLE_DAGSTER_URL"}
        assert set(env) & ENV_NAMES == ENV_NAMES - left_out, service
        assert env["RATATOUILLE_STORAGE"] == "s3"
        assert env["RATATOUILLE_S3_ENDPOINT"] == "minio:9000"
        assert env["RATATOUILLE_S3_USE_SSL"] == "false"
        assert mounts(service)["/app/.ratatouille"] == "state"
        assert env["RATATOUILLE_STATE_DIR"] == "/app/.ratatouille"
    for service in ("streamlit", "jupyter", "uploads"):
        assert environment(service)["RATATOUILLE_DAGSTER_URL"] == "http://dagster-webserver:3000"
    # The webserver and daemon never open the lake: they get no keys.
    for service in ("dagster-webserver", "dagster-daemon"):
        assert not set(environment(service)) & ENV_NAMES, service


def test_every_variable_is_documented_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.M))
    used = {m.group("name") for m in references()}
    assert used <= documented, used - documented


def test_every_secret_must_be_set() -> None:
    refs = references()
    assert not [m.group(0) for m in refs if m.group("bare")], "use ${NAME}, not $NAME"
    for m in refs:
        if m.group("name") in SECRETS:
            assert m.group("op") == ":?" and m.group("arg"), m.group(0)
    assert {m.group("name") for m in refs} >= SECRETS
    # Either may be empty, not both: that is the preflight's job.
    app = [m for m in refs if m.group("name").startswith("RATATOUILLE_APP_PASSWORD")]
    assert app and all(m.group("op") == ":-" and not m.group("arg") for m in app)


def test_ports_bind_to_bind_address_default_localhost() -> None:
    published = {}
    for name, service in SERVICES.items():
        for spec in service.get("ports", []):
            match = BIND.match(spec)
            assert match, f"{name}: {spec}"
            published[int(match.group(1))] = name
    assert published == {
        9000: "minio",
        9001: "minio",
        3000: "dagster-webserver",
        8501: "proxy",
        8502: "uploads",
        8888: "jupyter",
    }


def test_images_are_pinned() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag and tag != "latest", f"{name}: {image}"
        if "build" in service:
            assert image == APP_IMAGE, name
        else:  # a release, not a moving major version
            assert re.search(r"\d\.\d|RELEASE\.\d", tag), f"{name}: {image}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert bases and all(re.search(r":\d+\.\d+\.\d+-", b) for b in bases), bases
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    assert not re.search(r"^(ENV|ARG) .*(PASSWORD|SECRET|TOKEN|_KEY)", dockerfile, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git", "lake", ".ratatouille"} <= set(ignored)


def test_services_wait_for_healthy_dependencies() -> None:
    for name, service in SERVICES.items():
        long_running = name not in ONE_SHOT
        assert service.get("restart") == ("unless-stopped" if long_running else "no"), name
        if long_running:
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        for dep, spec in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert spec == {"condition": wanted}, f"{name} → {dep}"

    def ancestors(name: str) -> set[str]:
        deps = set(SERVICES[name].get("depends_on", {}))
        return deps.union(*(ancestors(d) for d in deps))

    for name in SERVICES.keys() - {"preflight"}:
        assert "preflight" in ancestors(name), name


def test_volumes_are_shared_where_the_services_meet() -> None:
    declared = set(COMPOSE["volumes"])
    for name in SERVICES:
        for target, source in mounts(name).items():
            if source.startswith("./"):
                assert (ROOT / source).is_file(), f"{name}: {source}"
            else:
                assert source in declared, f"{name}: {source}"
            assert target.startswith("/"), f"{name}: {target}"
    code = environment("dagster-code-server")
    # Models the app saves reach the code server; notebook steps edited in Jupyter too.
    for service in ("streamlit", "dagster-code-server"):
        assert mounts(service)[code["RATATOUILLE_MODELS_DIR"]] == "models", service
    for service in ("jupyter", "dagster-code-server"):
        assert mounts(service)["/app/notebooks"] == "notebooks", service
    assert code["RATATOUILLE_NOTEBOOK_STEPS_DIR"].startswith("/app/notebooks/")
    assert "--ServerApp.root_dir=/app/notebooks" in SERVICES["jupyter"]["command"]
    home = "/opt/dagster/home"
    assert f"DAGSTER_HOME={home}" in (ROOT / "Dockerfile").read_text()
    for service in DAGSTER_SERVICES:
        assert environment(service)["DAGSTER_HOME"] == home
        assert mounts(service)[home] == "dagster-home"
        assert mounts(service)[f"{home}/dagster.yaml"] == "./deploy/dagster/dagster.postgres.yaml"


GOOD_SECRETS = {
    "MINIO_ROOT_USER": "lakeroot",
    "MINIO_ROOT_PASSWORD": "a-long-root-password",
    "RATATOUILLE_S3_ACCESS_KEY": "ratatouille",
    "RATATOUILLE_S3_SECRET_KEY": "a-long-lake-secret",
    "RATATOUILLE_S3_QUERY_ACCESS_KEY": "playground",
    "RATATOUILLE_S3_QUERY_SECRET_KEY": "a-long-query-secret",
    "DAGSTER_PG_PASSWORD": "a-long-pg-password",
    "JUPYTER_TOKEN": "a-long-jupyter-token",
    "RATATOUILLE_APP_PASSWORD": "a-long-app-password",
}


def preflight_env() -> dict[str, str]:
    """The script runs the library's strength check with `python3`, the image's Python: here
    the venv's, first on PATH."""
    return {"PATH": f"{BIN}:{os.environ['PATH']}"}


HASH = "pbkdf2_sha256$600000$c2FsdA$ZGlnZXN0"
# The same hash unquoted in .env: compose expanded $c2FsdA and $ZGlnZXN0 to nothing.
EATEN = "pbkdf2_sha256$600000$$"


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({}, None),
        ({"RATATOUILLE_APP_PASSWORD": "", "RATATOUILLE_APP_PASSWORD_HASH": HASH}, None),
        ({"MINIO_ROOT_PASSWORD": "minioadmin"}, "MINIO_ROOT_PASSWORD"),
        ({"MINIO_ROOT_PASSWORD": "MinioAdmin"}, "MINIO_ROOT_PASSWORD"),
        ({"MINIO_ROOT_PASSWORD": "short"}, "MINIO_ROOT_PASSWORD"),
        ({"RATATOUILLE_S3_SECRET_KEY": "change-me-please"}, "RATATOUILLE_S3_SECRET_KEY"),
        ({"RATATOUILLE_APP_PASSWORD": ""}, "RATATOUILLE_APP_PASSWORD"),
        (
            {"RATATOUILLE_APP_PASSWORD": "", "RATATOUILLE_APP_PASSWORD_HASH": EATEN},
            "RATATOUILLE_APP_PASSWORD_HASH",
        ),
        ({"RATATOUILLE_S3_ACCESS_KEY": "lakeroot"}, "RATATOUILLE_S3_ACCESS_KEY"),
        ({"JUPYTER_TOKEN": ""}, "JUPYTER_TOKEN"),
    ],
)
def test_preflight_refuses_weak_secrets(changes: dict[str, str], refused: str | None) -> None:
    """Known defaults (any case), short values, a hash whose $ parts compose ate, a key reused
    for root, no app password; and the two ways to pass it."""
    env = {**preflight_env(), **GOOD_SECRETS, **changes}
    out = run("bash", "deploy/preflight.sh", env=env)
    if refused is None:
        assert out.returncode == 0, out.stderr
    else:
        assert out.returncode == 1
        assert f"- {refused} " in out.stderr
        assert "a-long" not in out.stderr, "a secret was printed"


def test_preflight_service_gets_every_variable_the_script_checks() -> None:
    script = (ROOT / "deploy" / "preflight.sh").read_text()
    checked = set(re.findall(r"^(?:check|distinct) (\w+)(?: (\w+))?", script, re.M))
    names = {name for pair in checked for name in pair if name}
    names |= set(re.findall(r"\$\{(RATATOUILLE_APP_\w+)", script))
    assert names >= SECRETS
    assert names <= set(environment("preflight"))
    assert SERVICES["preflight"]["command"] == ["bash", "deploy/preflight.sh"]


FAKE_MC = r"""#!/bin/sh
# Records the calls; remembers policies and attachments like MinIO would.
echo "$*" >> "$MC_STATE/calls"
case "$1 $2 $3" in
  "admin policy create") cp "$6" "$MC_STATE/$5.json" ;;
  "admin policy attach") echo "$7 $5" >> "$MC_STATE/attached" ;;
  "admin user info")
    echo "AccessKey: $5"
    grep "^$5 " "$MC_STATE/attached" 2>/dev/null | sed 's/^[^ ]* /PolicyName: /' ;;
esac
"""


def test_minio_init_creates_buckets_and_keys_and_can_run_again(tmp_path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mc").write_text(FAKE_MC)
    (bin_dir / "mc").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MC_STATE": str(tmp_path),
        **{k: v for k, v in GOOD_SECRETS.items() if "S3" in k or "MINIO" in k},
    }
    assert set(env) - {"PATH", "MC_STATE"} <= set(environment("minio-init"))
    assert mounts("minio-init")["/init.sh"] == "./deploy/minio/init.sh"
    for attempt in (1, 2):  # sh: the mc image has no bash
        out = run("sh", "deploy/minio/init.sh", env=env)
        assert out.returncode == 0, f"run {attempt}: {out.stderr}"
        assert "a-long" not in out.stdout + out.stderr, "a secret was printed"
    calls = (tmp_path / "calls").read_text().splitlines()
    buckets = ("bronze", "silver", "gold", "landing")
    for bucket in buckets:
        assert calls.count(f"mb --ignore-existing lake/{bucket}") == 2
    attaches = [c for c in calls if c.startswith("admin policy attach")]
    assert attaches == [
        "admin policy attach lake ratatouille-readwrite --user ratatouille",
        "admin policy attach lake ratatouille-readonly --user playground",
    ], "attached once, not again on the second run"

    def statement(policy: str) -> dict[str, Any]:
        doc = json.loads((tmp_path / f"{policy}.json").read_text())
        [only] = doc["Statement"]
        return dict(only)

    writer = statement("ratatouille-readwrite")
    assert writer["Resource"] == [f"arn:aws:s3:::{b}{s}" for b in buckets for s in ("", "/*")]
    reader = statement("ratatouille-readonly")
    assert set(reader["Action"]) == {"s3:GetBucketLocation", "s3:ListBucket", "s3:GetObject"}
    assert reader["Resource"] == [f"arn:aws:s3:::{b}{s}" for b in buckets[:3] for s in ("", "/*")]


def test_only_the_login_gate_publishes_the_app_and_dagster_stays_local() -> None:
    """Finding 13 (compose half) and 5: Streamlit is not published, the proxy (Debian's nginx
    from the project image, with the gate) is; Dagster's UI binds its own address, local."""
    proxy = SERVICES["proxy"]
    assert proxy.get("image") == APP_IMAGE and proxy["command"][:3] == [
        "python", "-m", "streamlit_app.gate",
    ]  # fmt: skip
    assert proxy["command"][-1] == "streamlit:8501"
    assert "apt-get install -y --no-install-recommends nginx" in (ROOT / "Dockerfile").read_text()
    assert "ports" not in SERVICES["streamlit"]
    assert [p for s in SERVICES.values() for p in s.get("ports", []) if p.endswith(":8501")] == [
        "${BIND_ADDRESS:-127.0.0.1}:8501:8501"
    ]
    assert SERVICES["dagster-webserver"]["ports"] == [
        "${DAGSTER_BIND_ADDRESS:-127.0.0.1}:3000:3000"
    ]
    # Gate and app verify one session key: the same login settings and the shared state volume.
    login = {k: v for k, v in environment("proxy").items() if k.startswith("RATATOUILLE_")}
    assert login.items() <= environment("streamlit").items()
    assert mounts("proxy")["/app/.ratatouille"] == "state"
