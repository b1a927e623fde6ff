"""The Kubernetes manifests (kustomize, one node) agree with the code they run.

No cluster and no kustomize binary are needed: the base and the example overlay are read as
YAML, and every name, port, probe, command and variable in them is checked against the service
specs and their settings classes, as tests/test_compose.py does for the compose file.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deployment_checks import (
    CHECKED_NAMES,
    GATEWAY,
    ROOT,
    SPECS,
    enrol_command,
    spec_env_names,
    wants_service_account,
)

from tongban_kit.service import ServiceSpec

KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
EXAMPLE = KUBERNETES / "overlays" / "example"
AUTOSCALED = ("gateway", "exchange")

per_spec = pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)


def _kustomization(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return loaded


def _objects() -> Iterator[dict[str, Any]]:
    for resource in _kustomization(BASE)["resources"]:
        yield from (doc for doc in yaml.safe_load_all((BASE / resource).read_text()) if doc)


def _object(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name!r}, found {len(found)}"
    return found[0]


def _container(spec: ServiceSpec) -> dict[str, Any]:
    pod = _object("Deployment", spec.name)["spec"]["template"]["spec"]
    containers = [c for c in pod["containers"] if c["name"] == spec.name]
    assert len(containers) == 1, f"the {spec.name} Deployment has no container {spec.name!r}"
    container: dict[str, Any] = containers[0]
    return container


def _literals(generators: list[dict[str, Any]], name: str) -> dict[str, str]:
    items = [item for g in generators if g["name"] == name for item in g.get("literals", [])]
    return dict(item.partition("=")[::2] for item in items)


def _secret_env_names(secret: str) -> set[str]:
    """The variables the example overlay's env file for ``secret`` holds."""
    generators = _kustomization(EXAMPLE)["secretGenerator"]
    (generator,) = [g for g in generators if g["name"] == secret]
    names = set()
    for env_file in generator["envs"]:
        example = EXAMPLE / f"{env_file}.example"
        assert example.is_file(), f"the example overlay has no {example.name} to copy"
        for line in example.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                names.add(line.partition("=")[0].strip())
    return names


def _environment(container: dict[str, Any]) -> dict[str, str]:
    """What a container's process reads: env entries, the node ConfigMap and its secret."""
    env = {item["name"]: item.get("value", "") for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            generators = _kustomization(BASE)["configMapGenerator"]
            env |= _literals(generators, name)
            env |= _literals(_kustomization(EXAMPLE).get("configMapGenerator", []), name)
        if "secretRef" in source:
            env |= dict.fromkeys(_secret_env_names(source["secretRef"]["name"]), "")
    return env


def _port(container: dict[str, Any], port: str | int) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def test_the_base_lists_every_manifest_beside_it() -> None:
    listed = set(_kustomization(BASE)["resources"])
    present = {p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == present


@per_spec
def test_each_service_runs_its_own_image_on_its_port_with_probes(spec: ServiceSpec) -> None:
    container = _container(spec)
    assert container["image"].split(":")[0] == f"tongban/{spec.name}"
    assert [_port(container, p["name"]) for p in container["ports"]] == [spec.default_port]
    ready = container["readinessProbe"]["httpGet"]
    alive = container["livenessProbe"]["httpGet"]
    assert alive["path"] == "/healthz"
    # The gateway stays ready with an upstream down (it answers the rest, 503s for that one).
    assert ready["path"] == ("/healthz" if spec.name == GATEWAY else "/readyz")
    assert _port(container, ready["port"]) == _port(container, alive["port"]) == spec.default_port
    service = _object("Service", spec.name)
    assert [p["port"] for p in service["spec"]["ports"]] == [spec.default_port]
    assert (
        service["spec"]["selector"]
        == _object("Deployment", spec.name)["spec"]["selector"]["matchLabels"]
    )


@per_spec
def test_every_variable_names_a_real_setting_of_that_image(spec: ServiceSpec) -> None:
    known = spec_env_names(spec)
    env = _environment(_container(spec))
    unknown = sorted(
        name
        for name in env
        if (name.startswith("TONGBAN_") or name in CHECKED_NAMES) and name not in known
    )
    assert not unknown, f"{spec.name} is given variables no setting of it reads: {unknown}"
    assert env.get(f"{spec.env_prefix}HOST") == "0.0.0.0"


@per_spec
def test_each_database_is_migrated_in_an_init_container_first(spec: ServiceSpec) -> None:
    if not spec.migrations:
        pytest.skip(f"{spec.name} has no database")
    pod = _object("Deployment", spec.name)["spec"]["template"]["spec"]
    command = ["tongban", "db", "upgrade", "--service", spec.name, "--create"]
    (migrate,) = [c for c in pod.get("initContainers", []) if c["command"] == command]
    assert migrate["image"] == _container(spec)["image"]
    database_url = f"{spec.env_prefix}DATABASE_URL"
    assert database_url in _environment(migrate)
    assert database_url in _environment(_container(spec))


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if wants_service_account(s)], ids=lambda spec: spec.name
)
def test_each_service_account_is_enrolled_with_its_scopes_and_mounted(spec: ServiceSpec) -> None:
    env = _environment(_container(spec))
    key_file = env[f"{spec.env_prefix}CLIENT_KEY_FILE"]
    assert env[f"{spec.env_prefix}CLIENT_ID"] == f"svc-{spec.name}"
    job = _object("Job", "enrol-services")["spec"]["template"]["spec"]
    script = " ".join(" ".join(c["command"]) for c in job["containers"])
    assert shlex.join(enrol_command(spec, key_file)) in shlex.join(shlex.split(script))
    pod = _object("Deployment", spec.name)["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in _container(spec)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mounted,) = [name for name, path in mounts.items() if path == str(Path(key_file).parent)]
    secret = volumes[mounted]["secret"]
    # The pod holds its own key only.
    assert [item["path"] for item in secret["items"]] == [Path(key_file).name]


def test_the_gateway_finds_every_service_by_its_kubernetes_service() -> None:
    env = _environment(_container(next(s for s in SPECS if s.name == GATEWAY)))
    for spec in SPECS:
        if spec.name == GATEWAY:
            continue
        url = urlsplit(env[f"TONGBAN_GATEWAY_{spec.name.upper()}_URL"])
        assert url.hostname == spec.name
        assert url.port == spec.default_port


@pytest.mark.parametrize("name", AUTOSCALED)
def test_gateway_and_exchange_scale_horizontally(name: str) -> None:
    autoscaler = _object("HorizontalPodAutoscaler", name)["spec"]
    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert 2 <= autoscaler["minReplicas"] < autoscaler["maxReplicas"]


def test_more_than_one_gateway_shares_its_rate_limits_through_redis() -> None:
    env = _environment(_container(next(s for s in SPECS if s.name == GATEWAY)))
    assert "TONGBAN_GATEWAY_REDIS_URL" in env


@per_spec
def test_pods_run_as_the_images_non_root_user(spec: ServiceSpec) -> None:
    pod = _object("Deployment", spec.name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert _container(spec)["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_example_overlay_keeps_secrets_out_of_the_repository() -> None:
    ignored = (EXAMPLE / ".gitignore").read_text().split()
    assert {"*.env", "*.pem"} <= set(ignored)
    generated = [
        name
        for g in _kustomization(EXAMPLE)["secretGenerator"]
        for name in [*g.get("envs", []), *g.get("files", [])]
    ]
    assert all(name.endswith((".env", ".pem")) for name in generated)


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with kustomize) not installed"
)
def test_the_example_overlay_builds_with_kustomize(tmp_path: Path) -> None:
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    overlay = copy / "overlays" / "example"
    for example in overlay.glob("*.env.example"):
        shutil.copy(example, overlay / example.name.removesuffix(".example"))
    for key in ("registration.pem", "exchange.pem"):
        (overlay / key).write_text("placeholder\n")
    built = subprocess.run(
        ["kubectl", "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    objects = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    namespaces = {o["metadata"].get("namespace") for o in objects}
    assert namespaces == {"tongban-440300"}
    deployments = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    assert deployments == {spec.name for spec in SPECS}
