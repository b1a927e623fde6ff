"""What the code says a deployment may contain: used by the compose and Kubernetes checks.

Deployment files name settings by environment variable and services by spec; pydantic-settings
ignores a name it does not know, so a misspelt variable would leave a service on its defaults
in silence. These helpers read the truth from the service specs and their settings classes.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path
from typing import Any

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
