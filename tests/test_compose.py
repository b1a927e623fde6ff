"""The one-node compose file and the services' Dockerfiles agree with the code they run.

No Docker engine is needed: ``docker-compose.yml`` is read as YAML and each Dockerfile as text,
and every name and port in them is checked against the service specs (``load_specs``) and the
settings classes the specs point at. A misspelt variable would otherwise be ignored in silence
(pydantic-settings skips unknown names) and the service would start on its defaults.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deployment_checks import (
    BY_NAME,
    CHECKED_NAMES,
    GATEWAY,
    ROOT,
    SPECS,
    distribution_of,
    dockerfile_of,
    enrol_command,
    resolve,
    spec_env_names,
    wants_service_account,
)
from sqlalchemy.engine import make_url

from tongban_kit.service import ServiceSpec

COMPOSE_FILE = ROOT / "docker-compose.yml"
URL = re.compile(r"https?://[^\s'\"]+")

per_spec = pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
per_database = pytest.mark.parametrize(
    "spec", [s for s in SPECS if s.migrations], ids=lambda spec: spec.name
)


# --- what the compose file says ------------------------------------------------------------


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    with path.open() as stream:
        compose: dict[str, Any] = yaml.safe_load(stream)
    return compose


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's environment, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in env.items()}
    return dict(item.partition("=")[::2] for item in env)


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set: the default (or empty)."""
    return re.sub(r"\$\{\w+(?::?[-?]([^}]*))?\}", lambda m: m.group(1) or "", value)


def built_from(service: Mapping[str, Any]) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context: str = build.get("context", ".")
    dockerfile: str = build.get("dockerfile", "Dockerfile")
    return (ROOT / context / dockerfile).resolve()


def spec_of(service: Mapping[str, Any], specs: Iterable[ServiceSpec] = SPECS) -> ServiceSpec | None:
    """The spec whose image a compose service runs, known by the Dockerfile it builds."""
    dockerfile = built_from(service)
    return next((spec for spec in specs if dockerfile_of(spec) == dockerfile), None)


def unknown_variables(compose: Mapping[str, Any], specs: Iterable[ServiceSpec]) -> list[str]:
    """``service: VARIABLE`` for each Tongban-looking variable that no setting of the image reads.

    A service built from a Tongban Dockerfile may set only its own service's settings and the
    node-wide ones; a service built from none (postgres, kafka) may name any Tongban setting.
    """
    specs = list(specs)
    everything = set().union(*(spec_env_names(spec) for spec in specs))
    problems = []
    for name, service in compose.get("services", {}).items():
        spec = spec_of(service, specs)
        known = spec_env_names(spec) if spec else everything
        for variable in environment(service):
            checked = variable.startswith("TONGBAN_") or variable in CHECKED_NAMES
            if checked and variable not in known:
                problems.append(f"{name}: {variable}")
    return sorted(problems)


def services_running(spec: ServiceSpec, compose: Mapping[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in compose["services"].items() if spec_of(s) == spec}


def container_port(mapping: str | int | Mapping[str, Any]) -> int:
    if isinstance(mapping, Mapping):
        return int(mapping["target"])
    return int(str(mapping).rsplit(":", 1)[-1].split("/", 1)[0])


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


@per_spec
def test_every_service_runs_in_compose_from_its_own_dockerfile(spec: ServiceSpec) -> None:
    services = load_compose()["services"]
    assert spec.name in services, f"docker-compose.yml has no service named {spec.name!r}"
    dockerfile = built_from(services[spec.name])
    assert dockerfile is not None, f"compose service {spec.name!r} has no build section"
    assert dockerfile.is_file(), f"{spec.name}: {dockerfile} does not exist"
    assert dockerfile == dockerfile_of(spec), (
        f"{spec.name} is built from {dockerfile}, not from {dockerfile_of(spec)}"
    )


def test_depends_on_names_compose_services() -> None:
    services = load_compose()["services"]
    missing = [
        f"{name} -> {other}"
        for name, service in services.items()
        for other in service.get("depends_on", {})
        if other not in services
    ]
    assert not missing, f"depends_on names services compose does not have: {missing}"


# --- every variable names a real setting ---------------------------------------------


def test_every_variable_names_a_real_setting() -> None:
    problems = unknown_variables(load_compose(), SPECS)
    assert not problems, (
        f"docker-compose.yml sets variables that no setting of that image reads: {problems}"
    )


@per_spec
def test_each_service_settings_load_from_its_compose_environment(
    spec: ServiceSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in list(os.environ):
        if variable.startswith("TONGBAN_") or variable in CHECKED_NAMES:
            monkeypatch.delenv(variable)
    service = load_compose()["services"][spec.name]
    for variable, value in environment(service).items():
        monkeypatch.setenv(variable, interpolate(value))
    settings = resolve(spec.settings)()  # raises on a value the setting refuses
    assert settings.node.kafka_bootstrap_servers == "kafka:9092"
    if spec.database:
        url = make_url(settings.database_url)
        assert (url.host, url.database) == ("postgres", spec.database), (
            f"{spec.name} reads database {url.database} on {url.host}, "
            f"expected {spec.database} on postgres"
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


@per_spec
def test_compose_ports_and_health_checks_use_the_default_port(spec: ServiceSpec) -> None:
    for name, service in services_running(spec, load_compose()).items():
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


def test_only_the_gateway_is_published() -> None:
    published = sorted(n for n, s in load_compose()["services"].items() if s.get("ports"))
    assert published == [GATEWAY], f"services with published ports: {published}"


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


# --- the gateway finds every service ----------------------------------------------------


def test_gateway_upstreams_point_at_compose_services_and_ports() -> None:
    compose = load_compose()
    env = environment(compose["services"][GATEWAY])
    for spec in SPECS:
        if spec.name == GATEWAY:
            continue
        # The node launcher's convention, and GatewaySettings' fields.
        variable = f"TONGBAN_GATEWAY_{spec.name.upper()}_URL"
        assert variable in env, f"the gateway is not told where {spec.name} is ({variable})"
        url = urlsplit(env[variable])
        target = compose["services"].get(url.hostname or "")
        assert target is not None, f"{variable} names host {url.hostname!r}, not a compose service"
        assert spec_of(target) == spec, f"{variable} points at {url.hostname}, not {spec.name}"
        assert url.port == spec.default_port, (
            f"{variable} uses port {url.port}; {spec.name} listens on {spec.default_port}"
        )


def test_gateway_waits_for_every_service_to_be_healthy() -> None:
    depends = load_compose()["services"][GATEWAY].get("depends_on", {})
    for spec in SPECS:
        if spec.name != GATEWAY:
            condition = depends.get(spec.name, {}).get("condition")
            assert condition == "service_healthy", f"gateway -> {spec.name}: {condition}"


# --- migrations run before the service, on the service's own image -----------------------


@per_database
def test_each_database_is_migrated_before_its_service_starts(spec: ServiceSpec) -> None:
    # An image holds one service, so only that service's image can migrate its database.
    compose = load_compose()
    service = compose["services"][spec.name]
    command = ["tongban", "db", "upgrade", "--service", spec.name, "--create"]
    jobs = [
        name
        for name, other in services_running(spec, compose).items()
        if other.get("command") == command
    ]
    assert len(jobs) == 1, f"expected one job running `{' '.join(command)}` on {spec.name}'s image"
    job = compose["services"][jobs[0]]
    variable = f"{spec.env_prefix}DATABASE_URL"
    assert environment(job).get(variable) == environment(service).get(variable), (
        f"{jobs[0]} and {spec.name} disagree on {variable}"
    )
    condition = service.get("depends_on", {}).get(jobs[0], {}).get("condition")
    assert condition == "service_completed_successfully", (
        f"{spec.name} must wait for {jobs[0]} to complete, not {condition!r}"
    )


# --- services that call identity are enrolled as its clients ------------------------------


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if wants_service_account(s)], ids=lambda spec: spec.name
)
def test_each_service_account_is_enrolled_with_its_scopes_and_used(spec: ServiceSpec) -> None:
    compose = load_compose()
    env = environment(compose["services"][spec.name])
    key_file = env.get(f"{spec.env_prefix}CLIENT_KEY_FILE")
    assert key_file, f"{spec.name} is not given its service account key ({spec.env_prefix}…)"
    assert env.get(f"{spec.env_prefix}CLIENT_ID") == f"svc-{spec.name}"
    wanted = shlex.join(enrol_command(spec, key_file))
    enrolling = [
        name
        for name, service in compose["services"].items()
        if wanted in shlex.join(shlex.split(" ".join(service.get("command") or [])))
    ]
    assert enrolling, f"no compose job runs `{wanted}`"
    depends = compose["services"][spec.name].get("depends_on", {})
    assert depends.get(enrolling[0], {}).get("condition") == "service_completed_successfully"
