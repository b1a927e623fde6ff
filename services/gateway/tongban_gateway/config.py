"""The route configuration file: its format, and loading it with a message that names the mistake.

The built-in configuration is ``routes.yaml`` beside this module; an operator's file (YAML or
JSON, JSON being YAML) replaces it whole. ``load_config`` parses and validates; what it returns
is compiled into a ``RouteTable`` (``tongban_gateway.routes``), which checks what the models
cannot (URLs, patterns, rate-limit names). Any mistake is a ``RouteConfigError`` at start.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "GatewayConfig",
    "RateLimitClass",
    "RouteConfigError",
    "RouteRule",
    "UpstreamConfig",
    "load_config",
]

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ALL_METHODS: tuple[Method, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_NAME = r"^[a-z][a-z0-9-]{0,39}$"


class RouteConfigError(ValueError):
    """The route configuration (file or settings) cannot be used; the message says why."""


class _Strict(BaseModel):
    # A misspelt key is a mistake to report, not a default to take silently.
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimitClass(_Strict):
    """A token bucket: ``burst`` requests at once, refilled at ``rate_per_s``."""

    rate_per_s: Annotated[float, Field(gt=0)]
    burst: Annotated[int, Field(ge=1)]


class RouteRule(_Strict):
    """Requests to paths matching ``path`` (relative to the upstream's prefix) with one of
    ``methods`` (any, when absent); unset limits fall back to the upstream's."""

    path: Annotated[str, Field(pattern=r"^/", max_length=500)]
    methods: tuple[Method, ...] | None = None
    public: bool = False
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    max_body_bytes: Annotated[int, Field(ge=0)] | None = None
    rate_limit: str | None = None


class UpstreamConfig(_Strict):
    """One service: callers reach it under ``/api/<name>/``."""

    name: Annotated[str, Field(pattern=_NAME)]
    url: str | None = None
    methods: tuple[Method, ...] = ALL_METHODS
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    max_body_bytes: Annotated[int, Field(ge=0)] | None = None
    rate_limit: str | None = "default"
    routes: tuple[RouteRule, ...] = ()


class NodeRoute(_Strict):
    """Another node's gateway, reached under ``/nodes/<code>/``."""

    code: Annotated[str, Field(pattern=r"^[0-9A-Za-z-]{1,32}$")]
    url: str
    timeout_s: Annotated[float, Field(gt=0)] | None = None


#: Taken by upstreams that name no class, unless the file declares its own ``default``.
DEFAULT_RATE_LIMIT = RateLimitClass(rate_per_s=50, burst=100)


class GatewayConfig(_Strict):
    """The whole file."""

    rate_limits: dict[str, RateLimitClass] = Field(default_factory=dict)
    upstreams: tuple[UpstreamConfig, ...]
    nodes: tuple[NodeRoute, ...] = ()

    @model_validator(mode="after")
    def _with_default_class(self) -> GatewayConfig:
        self.rate_limits.setdefault("default", DEFAULT_RATE_LIMIT)
        return self


def describe(path: Path | None) -> str:
    """How messages name the configuration in ``path``."""
    return "the built-in routes.yaml" if path is None else str(path)


def load_config(path: Path | None) -> GatewayConfig:
    """The configuration in ``path``, or the built-in one; ``RouteConfigError`` naming the file
    and the offending entry when it is unreadable or invalid."""
    source = describe(path)
    if path is None:
        text = resources.files(__package__).joinpath("routes.yaml").read_text(encoding="utf-8")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RouteConfigError(f"route configuration {source} cannot be read: {exc}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RouteConfigError(f"route configuration {source} is not YAML/JSON: {exc}") from exc
    try:
        return GatewayConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise RouteConfigError(f"route configuration {source} is invalid: {problems}") from None
