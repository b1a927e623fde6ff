"""What the code says a deployment may contain: used by the compose and Kubernetes checks.

Also how the compose files are read (``ComposeNode``: one node of a compose file), shared by
tests/test_compose.py (every node of every compose file) and tests/test_compose_nodes.py (the
federation wiring of ``deploy/docker-compose.nodes.yml``).

Deployment files name settings by environment variable and services by spec; pydantic-settings
ignores a name it does not know, so a misspelt variable would leave a service on its defaults
in silence. These helpers read the truth from the service specs and their settings classes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from tongban_kit.node.specs import load_specs
from tongban_kit.service import ServiceSpec
from tongban_kit.settings import NodeSettings

ROOT = Path(__file__).resolve().parents[1]
SPECS = load_specs()
BY_NAME = {spec.name: spec for spec in SPECS}
GATEWAY = "gateway"
# Names outside the TONGBAN_ prefix that a Tongban process could be meant to read.
CHECKED_NAMES = frozenset({"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"})


def resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)


def settings_env_names(cls: type[BaseSettings]) -> set[str]:
    """The variables pydantic-settings reads for ``cls``: its aliases, else prefix + field."""
    prefix = cls.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def spec_env_names(spec: ServiceSpec) -> set[str]:
    """What a process of this service reads: its own settings and the node-wide ones."""
    return settings_env_names(resolve(spec.settings)) | settings_env_names(NodeSettings)


def dockerfile_of(spec: ServiceSpec) -> Path:
    """The Dockerfile beside the service's package (``services/<dir>/Dockerfile``)."""
    package = spec.app.split(".", 1)[0]
    found = find_spec(package)
    assert found is not None, f"cannot locate package {package}"
    assert found.origin, f"package {package} has no file"
    return Path(found.origin).resolve().parents[1] / "Dockerfile"


def distribution_of(spec: ServiceSpec) -> str:
    """The distribution that publishes the spec (what ``uv sync --package`` must install)."""
    for entry in entry_points(group="tongban.services"):
        if entry.name == spec.name and entry.dist is not None:
            return entry.dist.name
    raise AssertionError(f"no distribution publishes the {spec.name} spec")


def wants_service_account(spec: ServiceSpec) -> bool:
    """Services that call identity as a client of their own (``ServiceSpec.client_scopes``)."""
    return bool(spec.client_scopes)


def enrol_command(spec: ServiceSpec, key_file: str) -> list[str]:
    """The command that enrols (or updates) ``spec``'s service account, as the launcher runs it."""
    return [
        *("tongban", "departments", "service-account"),
        *("--service", spec.name, "--scopes", " ".join(spec.client_scopes)),
        *("--key-file", key_file),
    ]


# --- compose files ---------------------------------------------------------------------------

COMPOSE_FILE = ROOT / "docker-compose.yml"
NODES_FILE = ROOT / "deploy" / "docker-compose.nodes.yml"
COMPOSE_FILES = (COMPOSE_FILE, NODES_FILE)
CENTRAL = "100000"


@cache
def _load(path: Path) -> dict[str, Any]:
    with path.open() as stream:
        compose: dict[str, Any] = yaml.safe_load(stream)
    return compose


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """A compose file as YAML (anchors and merge keys resolved); read once, never mutate."""
    return _load(path)


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's environment, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in env.items()}
    return dict(item.partition("=")[::2] for item in env)


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set: the default (or empty); ``$$`` is ``$``."""
    value = re.sub(r"\$\{\w+(?::?[-?]([^}]*))?\}", lambda m: m.group(1) or "", value)
    return value.replace("$$", "$")


def built_from(service: Mapping[str, Any], base: Path = ROOT) -> Path | None:
    """The Dockerfile a service builds; ``base`` is the compose file's folder."""
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context: str = build.get("context", ".")
    dockerfile: str = build.get("dockerfile", "Dockerfile")
    return (base / context / dockerfile).resolve()


def spec_of(
    service: Mapping[str, Any], specs: Iterable[ServiceSpec] = SPECS, base: Path = ROOT
) -> ServiceSpec | None:
    """The spec whose image a compose service runs, known by the Dockerfile it builds."""
    dockerfile = built_from(service, base)
    return next((spec for spec in specs if dockerfile_of(spec) == dockerfile), None)


def unknown_variables(
    compose: Mapping[str, Any], specs: Iterable[ServiceSpec], base: Path = ROOT
) -> list[str]:
    """``service: VARIABLE`` for each Tongban-looking variable that no setting of the image reads.

    A service built from a Tongban Dockerfile may set only its own service's settings and the
    node-wide ones; a service built from none (postgres, kafka) may name any Tongban setting.
    """
    specs = list(specs)
    everything = set().union(*(spec_env_names(spec) for spec in specs))
    problems = []
    for name, service in compose.get("services", {}).items():
        spec = spec_of(service, specs, base)
        known = spec_env_names(spec) if spec else everything
        for variable in environment(service):
            checked = variable.startswith("TONGBAN_") or variable in CHECKED_NAMES
            if checked and variable not in known:
                problems.append(f"{name}: {variable}")
    return sorted(problems)


def command_text(service: Mapping[str, Any]) -> str:
    """A service's command as one normalised shell line (``$$`` as the shell sees it)."""
    command = service.get("command") or []
    if isinstance(command, str):
        command = [command]
    return interpolate(shlex.join(shlex.split(" ".join(command))))


def mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """Container path -> named volume, from the short ``volume:/path[:ro]`` syntax."""
    found = {}
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        found[rest.split(":", 1)[0]] = source
    return found


@dataclass(frozen=True)
class ComposeNode:
    """One node of a compose file: its services are ``<kind>`` (one-node file, ``code`` None)
    or ``<kind>-<code>`` (the multi-node file), each talking to its own node's services."""

    path: Path
    code: str | None = None

    def __str__(self) -> str:
        return self.path.name if self.code is None else f"{self.path.name}:{self.code}"

    @property
    def compose(self) -> dict[str, Any]:
        return load_compose(self.path)

    @property
    def base(self) -> Path:
        return self.path.parent

    def name(self, kind: str) -> str:
        return kind if self.code is None else f"{kind}-{self.code}"

    def service(self, kind: str) -> dict[str, Any]:
        service: dict[str, Any] = self.compose["services"][self.name(kind)]
        return service

    def services(self) -> dict[str, Any]:
        """This node's services: all of a one-node file, else those named ``…-<code>``."""
        return {
            name: service
            for name, service in self.compose["services"].items()
            if self.code is None or name.endswith(f"-{self.code}")
        }

    def running(self, spec: ServiceSpec) -> dict[str, Any]:
        """This node's services (and jobs) on ``spec``'s image."""
        return {n: s for n, s in self.services().items() if spec_of(s, base=self.base) == spec}

    def host(self, url: str) -> str:
        """The compose service a URL of this file names (its host)."""
        return urlsplit(interpolate(url)).hostname or ""


ONE_NODE = ComposeNode(COMPOSE_FILE)
FEDERATION = tuple(ComposeNode(NODES_FILE, code) for code in (CENTRAL, "440300", "310000"))
COMPOSE_NODES = (ONE_NODE, *FEDERATION)
