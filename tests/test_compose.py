"""The compose files and the services' Dockerfiles agree with the code they run.

No Docker engine is needed: ``docker-compose.yml`` (one node) and
``deploy/docker-compose.nodes.yml`` (central and two regional nodes) are read as YAML and each
Dockerfile as text, and every name and port in them is checked against the service specs
(``load_specs``) and the settings classes the specs point at, for every node of every file. A
misspelt variable would otherwise be ignored in silence (pydantic-settings skips unknown names)
and the service would start on its defaults. tests/test_compose_nodes.py checks how the nodes
of the multi-node file find each other.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from deployment_checks import (
    BY_NAME,
    CHECKED_NAMES,
    COMPOSE_FILES,
    COMPOSE_NODES,
    GATEWAY,
    ROOT,
    SPECS,
    ComposeNode,
    command_text,
    distribution_of,
    dockerfile_of,
    enrol_command,
    environment,
    interpolate,
    load_compose,
    mounts,
    resolve,
    spec_of,
    unknown_variables,
    wants_service_account,
)
from sqlalchemy.engine import make_url

from tongban_kit.service import ServiceSpec

URL = re.compile(r"https?://[^\s'\"]+")

per_spec = pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
per_database = pytest.mark.parametrize(
    "spec", [s for s in SPECS if s.migrations], ids=lambda spec: spec.name
)
per_node = pytest.mark.parametrize("node", COMPOSE_NODES, ids=str)
per_file = pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda path: path.name)


def container_port(mapping: str | int | dict[str, Any]) -> int:
    if isinstance(mapping, dict):
        return int(mapping["target"])
    return int(str(mapping).rsplit(":", 1)[-1].split("/", 1)[0])


def host_port(mapping: str | int | dict[str, Any]) -> str:
    if isinstance(mapping, dict):
        return str(mapping.get("published", ""))
    parts = str(mapping).split("/", 1)[0].split(":")
    return parts[-2] if len(parts) > 1 else ""


def local_url_ports(text: str) -> list[int]:
    parts = [urlsplit(url) for url in URL.findall(text)]
    return [p.port or 80 for p in parts if p.hostname in ("127.0.0.1", "localhost")]


# --- what a Dockerfile says --------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's instructions as (INSTRUCTION, arguments), continuations joined."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    parsed = (line.partition(" ") for line in map(str.strip, text.splitlines()) if line)
    return [(keyword.upper(), args.strip()) for keyword, _, args in parsed]


def final_stage(path: Path) -> dict[str, list[str]]:
    """The last stage's instructions: what the image runs with."""
    stage: dict[str, list[str]] = {}
    for keyword, args in instructions(path):
        if keyword == "FROM":
            stage = {}
        stage.setdefault(keyword, []).append(args)
    return stage


# --- every service runs in compose, from its own image --------------------------------


@per_node
@per_spec
def test_every_service_runs_in_compose_from_its_own_dockerfile(
    node: ComposeNode, spec: ServiceSpec
) -> None:
    name = node.name(spec.name)
    assert name in node.compose["services"], f"{node.path.name} has no service named {name!r}"
    service = node.service(spec.name)
    assert service.get("build"), f"compose service {name!r} has no build section"
    built = spec_of(service, base=node.base)
    assert built == spec, f"{name} is not built from {dockerfile_of(spec)}"


@per_file
def test_depends_on_names_compose_services(path: Path) -> None:
    services = load_compose(path)["services"]
    missing = [
        f"{name} -> {other}"
        for name, service in services.items()
        for other in service.get("depends_on", {})
        if other not in services
    ]
    assert not missing, f"depends_on names services compose does not have: {missing}"


@per_file
def test_named_volumes_are_declared(path: Path) -> None:
    compose = load_compose(path)
    used = {
        str(volume).partition(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
    }
    named = {v for v in used if not v.startswith((".", "/", "~"))}
    assert named <= set(compose.get("volumes") or {}), (
        f"undeclared: {named - set(compose['volumes'])}"
    )


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose (Compose v2) not installed"
)
@per_file
def test_compose_itself_accepts_the_file(path: Path) -> None:
    # Compose's own loader: schema, merge keys, interpolation, depends_on conditions.
    checked = subprocess.run(
        ["docker-compose", "-f", str(path), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


# --- every variable names a real setting ---------------------------------------------


@per_file
def test_every_variable_names_a_real_setting(path: Path) -> None:
    problems = unknown_variables(load_compose(path), SPECS, path.parent)
    assert not problems, (
        f"{path.name} sets variables that no setting of that image reads: {problems}"
    )


@per_node
@per_spec
def test_each_service_settings_load_from_its_compose_environment(
    node: ComposeNode, spec: ServiceSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in list(os.environ):
        if variable.startswith("TONGBAN_") or variable in CHECKED_NAMES:
            monkeypatch.delenv(variable)
    for variable, value in environment(node.service(spec.name)).items():
        monkeypatch.setenv(variable, interpolate(value))
    settings = resolve(spec.settings)()  # raises on a value the setting refuses
    # Each node's services use that node's own broker and database server.
    assert settings.node.kafka_bootstrap_servers == f"{node.name('kafka')}:9092"
    if node.code is not None:
        assert settings.node.node_code == node.code
    if spec.database:
        url = make_url(settings.database_url)
        assert (url.host, url.database) == (node.name("postgres"), spec.database), (
            f"{node.name(spec.name)} reads database {url.database} on {url.host}, "
            f"expected {spec.database} on {node.name('postgres')}"
        )


def _one_service(env: dict[str, str] | list[str], spec: str = "identity") -> dict[str, Any]:
    dockerfile = dockerfile_of(BY_NAME[spec]).relative_to(ROOT)
    return {
        "services": {
            spec: {"build": {"context": ".", "dockerfile": str(dockerfile)}, "environment": env}
        }
    }


@pytest.mark.parametrize(
    ("env", "rejected"),
    [
        ({"TONGBAN_IDENTITY_DATABSE_URL": "x"}, "identity: TONGBAN_IDENTITY_DATABSE_URL"),
        (["TONGBAN_NODE_COD=440300"], "identity: TONGBAN_NODE_COD"),
        ({"DATABASE_URL": "x"}, "identity: DATABASE_URL"),
        # Real, but the gateway's: the identity service would ignore it.
        ({"TONGBAN_GATEWAY_IDENTITY_URL": "x"}, "identity: TONGBAN_GATEWAY_IDENTITY_URL"),
    ],
    ids=["misspelt field", "misspelt node setting", "launcher-only name", "another service's"],
)
def test_checker_rejects_a_variable_no_setting_reads(
    env: dict[str, str] | list[str], rejected: str
) -> None:
    assert unknown_variables(_one_service(env), SPECS) == [rejected]


def test_checker_accepts_service_node_and_alias_names() -> None:
    env = {
        "TONGBAN_IDENTITY_DATABASE_URL": "x",
        "TONGBAN_IDENTITY_RUN_WORKERS": "false",
        "TONGBAN_NODE_CODE": "440300",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "TONGBAN_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "PYTHONFAULTHANDLER": "1",
    }
    assert unknown_variables(_one_service(env), SPECS) == []


# --- ports -------------------------------------------------------------------------------


@per_file
@per_spec
def test_compose_ports_and_health_checks_use_the_default_port(
    path: Path, spec: ServiceSpec
) -> None:
    for name, service in load_compose(path)["services"].items():
        if spec_of(service, base=path.parent) != spec:
            continue
        ports = [container_port(p) for p in [*service.get("ports", []), *service.get("expose", [])]]
        assert set(ports) <= {spec.default_port}, (
            f"{name} maps container ports {ports}; {spec.name} listens on {spec.default_port}"
        )
        test = service.get("healthcheck", {}).get("test", "")
        checked = local_url_ports(" ".join(test) if isinstance(test, list) else test)
        assert set(checked) <= {spec.default_port}, (
            f"{name}'s health check polls port(s) {checked}, not {spec.default_port}"
        )
        # The image's CMD fixes the port; a PORT setting would only mislead.
        port = environment(service).get(f"{spec.env_prefix}PORT", str(spec.default_port))
        assert port == str(spec.default_port), f"{name} sets {spec.env_prefix}PORT={port}"


@per_file
def test_only_the_gateways_are_published(path: Path) -> None:
    compose = load_compose(path)
    published = sorted(n for n, s in compose["services"].items() if s.get("ports"))
    gateways = sorted(node.name(GATEWAY) for node in COMPOSE_NODES if node.path == path)
    assert published == gateways, f"services with published ports: {published}"
    host_ports = [host_port(p) for n in published for p in compose["services"][n]["ports"]]
    assert len(set(host_ports)) == len(host_ports), f"a host port is published twice: {host_ports}"


# --- the Dockerfiles run what the specs say ----------------------------------------------


@per_spec
def test_dockerfile_cmd_runs_the_spec_app_on_its_port(spec: ServiceSpec) -> None:
    stage = final_stage(dockerfile_of(spec))
    assert len(stage.get("CMD", [])) == 1, f"{spec.name}: expected one CMD in the final stage"
    cmd = json.loads(stage["CMD"][0])  # exec form, so uvicorn is PID 1 and gets SIGTERM
    assert cmd[:3] == ["uvicorn", spec.app, "--factory"], (
        f"{spec.name}'s image runs {cmd[:3]}, expected uvicorn {spec.app} --factory"
    )
    options = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert options.get("--host") == "0.0.0.0", f"{spec.name} must listen on every interface"
    assert options.get("--port") == str(spec.default_port), (
        f"{spec.name}'s CMD listens on {options.get('--port')}, spec says {spec.default_port}"
    )


@per_spec
def test_dockerfile_exposes_and_health_checks_the_default_port(spec: ServiceSpec) -> None:
    stage = final_stage(dockerfile_of(spec))
    exposed = " ".join(stage.get("EXPOSE", [])).split()
    assert exposed == [str(spec.default_port)], (
        f"{spec.name} exposes {exposed}, spec says {spec.default_port}"
    )
    health = " ".join(stage.get("HEALTHCHECK", []))
    url = f"http://127.0.0.1:{spec.default_port}/healthz"
    assert url in health, f"{spec.name}'s HEALTHCHECK does not poll {url}: {health!r}"


@per_spec
def test_dockerfile_installs_its_own_distribution_as_a_non_root_user(spec: ServiceSpec) -> None:
    dockerfile = dockerfile_of(spec)
    syncs = [args for kw, args in instructions(dockerfile) if kw == "RUN" and "uv sync" in args]
    wanted = f"--package {distribution_of(spec)}"
    assert syncs, f"{spec.name}'s Dockerfile runs no uv sync"
    assert all(wanted in run and "--frozen" in run for run in syncs), (
        f"{spec.name}'s Dockerfile must `uv sync --frozen {wanted}`: {syncs}"
    )
    user = final_stage(dockerfile).get("USER", ["root"])[-1]
    assert user.split(":")[0] == "10001", f"{spec.name} runs as {user!r}, not uid 10001"


# --- the gateway finds every service of its node -------------------------------------------


@per_node
def test_gateway_upstreams_point_at_its_own_nodes_services(node: ComposeNode) -> None:
    env = environment(node.service(GATEWAY))
    for spec in SPECS:
        if spec.name == GATEWAY:
            continue
        # The node launcher's convention, and GatewaySettings' fields.
        variable = f"TONGBAN_GATEWAY_{spec.name.upper()}_URL"
        assert variable in env, f"the gateway is not told where {spec.name} is ({variable})"
        url = urlsplit(env[variable])
        assert url.hostname == node.name(spec.name), (
            f"{node.name(GATEWAY)}: {variable} names {url.hostname!r}, "
            f"not its own node's {node.name(spec.name)}"
        )
        assert spec_of(node.service(spec.name), base=node.base) == spec
        assert url.port == spec.default_port, (
            f"{variable} uses port {url.port}; {spec.name} listens on {spec.default_port}"
        )


@per_node
def test_gateway_waits_for_every_service_to_be_healthy(node: ComposeNode) -> None:
    depends = node.service(GATEWAY).get("depends_on", {})
    for spec in SPECS:
        if spec.name != GATEWAY:
            condition = depends.get(node.name(spec.name), {}).get("condition")
            assert condition == "service_healthy", (
                f"{node.name(GATEWAY)} -> {spec.name}: {condition}"
            )


# --- migrations run before the service, on the service's own image -----------------------


@per_node
@per_database
def test_each_database_is_migrated_before_its_service_starts(
    node: ComposeNode, spec: ServiceSpec
) -> None:
    # An image holds one service, so only that service's image can migrate its database.
    service = node.service(spec.name)
    command = ["tongban", "db", "upgrade", "--service", spec.name, "--create"]
    jobs = [name for name, other in node.running(spec).items() if other.get("command") == command]
    assert len(jobs) == 1, f"expected one job running `{' '.join(command)}` on {spec.name}'s image"
    job = node.compose["services"][jobs[0]]
    variable = f"{spec.env_prefix}DATABASE_URL"
    assert environment(job).get(variable) == environment(service).get(variable), (
        f"{jobs[0]} and {node.name(spec.name)} disagree on {variable}"
    )
    condition = service.get("depends_on", {}).get(jobs[0], {}).get("condition")
    assert condition == "service_completed_successfully", (
        f"{node.name(spec.name)} must wait for {jobs[0]} to complete, not {condition!r}"
    )


# --- services that call identity are enrolled as its clients ------------------------------


@per_node
@pytest.mark.parametrize(
    "spec", [s for s in SPECS if wants_service_account(s)], ids=lambda spec: spec.name
)
def test_each_service_account_is_enrolled_with_its_scopes_and_used(
    node: ComposeNode, spec: ServiceSpec
) -> None:
    service = node.service(spec.name)
    env = environment(service)
    key_file = env.get(f"{spec.env_prefix}CLIENT_KEY_FILE")
    assert key_file, f"{spec.name} is not given its service account key ({spec.env_prefix}…)"
    assert env.get(f"{spec.env_prefix}CLIENT_ID") == f"svc-{spec.name}"
    wanted = shlex.join(enrol_command(spec, key_file))
    enrolling = [name for name, job in node.services().items() if wanted in command_text(job)]
    assert enrolling, f"no job of {node} runs `{wanted}`"
    job = node.compose["services"][enrolling[0]]
    # At its own node's identity, with the key in the volume the service reads it from.
    identity_db = f"{BY_NAME['identity'].env_prefix}DATABASE_URL"
    assert environment(job)[identity_db] == environment(node.service("identity"))[identity_db]
    folder = str(Path(key_file).parent)
    assert mounts(job).get(folder) == mounts(service).get(folder) is not None
    depends = service.get("depends_on", {})
    assert depends.get(enrolling[0], {}).get("condition") == "service_completed_successfully"
