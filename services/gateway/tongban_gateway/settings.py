"""The gateway's settings (``TONGBAN_GATEWAY_*``). The gateway keeps no database."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from tongban_kit.settings import BaseServiceSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(BaseServiceSettings):
    """Where the gateway listens, where each service is, and how long to wait for them."""

    # populate_by_name: tests and callers may pass redis_url=... despite its aliases.
    model_config = SettingsConfigDict(
        env_prefix="TONGBAN_GATEWAY_", extra="ignore", populate_by_name=True
    )

    service_name: str = Field(default="gateway", description="Name in logs and metrics.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the gateway listens on.")
    identity_url: str = Field(
        default="http://127.0.0.1:8001",
        description="Base URL of the identity service; `/api/identity/…` is routed there.",
    )
    registration_url: str = Field(
        default="http://127.0.0.1:8002",
        description="Base URL of the registration service; `/api/registration/…` is routed there.",
    )
    exchange_url: str = Field(
        default="http://127.0.0.1:8003",
        description="Base URL of the data-exchange service; `/api/exchange/…` is routed there.",
    )
    upstream_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait, in seconds, for a service to send its response headers or "
        "its next chunk, or to accept the next chunk of a request body; past it the caller "
        "gets a 504.",
    )
    connect_timeout_s: float = Field(
        default=3.0,
        gt=0,
        description="Longest wait, in seconds, to connect to a service (or for a free pooled "
        "connection to it); past it the caller gets a 503.",
    )
    routes_file: Path | None = Field(
        default=None,
        description="Route configuration (YAML or JSON): upstreams, public routes, per-route "
        "methods, timeouts, body limits and rate-limit classes. Unset: the built-in "
        "`tongban_gateway/routes.yaml`. A bad file stops the gateway at start.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TONGBAN_GATEWAY_REDIS_URL", "REDIS_URL"),
        description="Redis shared by every gateway process for rate limits and, with a "
        "directory, the `jti` of the node assertions checked (also read from `REDIS_URL`). "
        "Unset: each process keeps its own buckets and remembers its own `jti` values.",
    )
    cors_origins: list[str] = Field(
        default=[],
        description="Browser origins (the portals) allowed to call the API cross-origin, as a "
        'JSON list: `["https://portal.example.gov.cn"]`. Empty: no cross-origin access.',
    )
    breaker_failures: int = Field(
        default=5,
        ge=1,
        description="Consecutive failures to reach a service (connection refused or timed "
        "out) that open its circuit breaker: calls then get a 503 at once.",
    )
    breaker_open_s: float = Field(
        default=5.0,
        gt=0,
        description="Seconds an open breaker waits before letting one probe request through; "
        "its success closes the breaker.",
    )
    node_key_file: Path | None = Field(
        default=None,
        description="PEM file of this node's P-256 private key, which signs the assertion sent "
        "with requests forwarded to other nodes (`/nodes/<code>/…`). Unset: a fixed "
        "development key outside production; refused in production when nodes are configured.",
    )
    directory_url: str | None = Field(
        default=None,
        description="Where the central node publishes the signed node directory (its gateway's "
        "`/api/identity/.well-known/tongban-directory.jwt`). Set: other nodes are found there, "
        "node assertions are checked against it, and businesses of other nodes are routed to "
        "them. Unset: only the `nodes` of the route configuration (a static fallback).",
    )
    directory_refresh_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between fetches of the directory. A copy stays usable until its "
        "`exp` (600 s after central signed it), across restarts (see `DIRECTORY_CACHE_FILE`).",
    )
    directory_cache_file: Path | None = Field(
        default=None,
        description="Where the last checked copy of the directory is kept, so a restart while "
        "central is down still has it. Unset: memory only.",
    )
    directory_anchor_file: Path | None = Field(
        default=None,
        description="JWKS of the central node's key, which must have signed the directory "
        "(written by `tongban directory enrol --anchor-file`). Unset: the central node's "
        "development key outside production; required in production.",
    )
