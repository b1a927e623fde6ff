"""Settings: one node-wide class and one prefixed class per service, read from the environment.

Node-wide settings (``TONGBAN_*``, plus the conventional ``KAFKA_BOOTSTRAP_SERVERS``) are shared
by every service of a node; a service's own settings (``TONGBAN_IDENTITY_*`` and so on) hold its
database, its port and its secrets. Nothing here is read at import time: a service builds its
settings in ``create_app`` and tests build their own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BaseServiceSettings", "NodeSettings", "ServiceSettings", "is_placeholder_secret"]

_PLACEHOLDERS = re.compile(r"^(|changeme|change-me|secret|password|dev|development|test|x+)$", re.I)


def is_placeholder_secret(value: str) -> bool:
    """True for values that must never guard a production node (empty, 'changeme', short)."""
    return bool(_PLACEHOLDERS.match(value.strip())) or len(value) < 16


class NodeSettings(BaseSettings):
    """What every service of one node shares."""

    model_config = SettingsConfigDict(env_prefix="TONGBAN_", extra="ignore")

    node_code: Annotated[str, Field(pattern=r"^\d{6}$")] = Field(
        default="440300",
        description="GB/T 2260 division code naming this node (100000 is the central node).",
    )
    environment: Literal["development", "production"] = Field(
        default="development",
        description="`production` refuses placeholder secrets and enables HSTS.",
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("TONGBAN_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers, comma separated.",
    )
    kafka_namespace: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")] = Field(
        default="tongban",
        description="Prefix of every topic and consumer group, so nodes or test runs can share "
        "one broker: topics are `<namespace>.<service>.events`.",
    )
    kafka_fetch_max_wait_ms: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Consumers' fetch wait. Low by default: the embedded broker does not wake a "
        "waiting fetch when data arrives, so latency is about half this value.",
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000,
        ge=1_000,
        le=300_000,
        description="Consumer group session timeout. The embedded broker holds each join for "
        "half of it, so a lower value starts consumers faster there.",
    )
    kafka_enable_idempotence: bool = Field(
        default=False,
        description="Idempotent producer. Keep off against the embedded broker, which refuses "
        "InitProducerId; turn on for Apache Kafka.",
    )

    def topic(self, logical: str) -> str:
        """The broker's name for a logical topic such as ``registration.events``."""
        return f"{self.kafka_namespace}.{logical}"

    token_issuer: str = Field(
        default="http://127.0.0.1:8000/api/identity",
        description="Issuer (`iss`) of this node's access tokens: identity's public URL as the "
        "gateway serves it. Identity signs with it; every service accepts only it.",
    )
    token_audience: str = Field(
        default="",
        description="Audience (`aud`) of this node's access tokens; empty means "
        "`tongban:<node code>`.",
    )
    identity_url: str = Field(
        default="http://127.0.0.1:8001",
        description="Identity's internal base URL, for services calling it as clients (signing "
        "documents, pairwise look-ups) with their service-account tokens.",
    )
    jwks_url: str = Field(
        default="http://127.0.0.1:8001/.well-known/jwks.json",
        description="Where services fetch identity's public keys (an internal URL; the node "
        "launcher points it at identity's port).",
    )

    directory_url: str | None = Field(
        default=None,
        description="The central directory (`…/api/identity/.well-known/tongban-directory.jwt` "
        "at central), as the gateway's `TONGBAN_GATEWAY_DIRECTORY_URL`. Set, services accept "
        "visitors: people signed in at another active node of the directory, with "
        "`TONGBAN_VISITOR_SCOPES` only. Unset, only this node's tokens.",
    )
    directory_anchor_file: Path | None = Field(
        default=None,
        description="Central's node key (a JWKS file, as the gateway's anchor) the directory "
        "must be signed with; required in production when `TONGBAN_DIRECTORY_URL` is set.",
    )
    visitor_scopes: list[str] = Field(
        default=["openid", "profile"],
        description="The only scopes a visitor's token keeps here (others are dropped): a "
        "person's own business (their applications, their documents) needs none. Never an "
        "operator, officer or department scope.",
    )

    @field_validator("directory_url")
    @classmethod
    def _directory_is_a_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("visitor_scopes")
    @classmethod
    def _visitors_are_people(cls, value: list[str]) -> list[str]:
        if "tongban:admin" in value:
            raise ValueError("tongban:admin is never a visitor's scope")
        return value

    @field_validator("token_issuer", "jwks_url", "identity_url")
    @classmethod
    def _is_a_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _audience_defaults_to_the_node(self) -> NodeSettings:
        if not self.token_audience:
            self.token_audience = f"tongban:{self.node_code}"
        return self

    gc_freeze: bool = Field(
        default=True,
        description="Once a service has started, move what it holds into the garbage "
        "collector's permanent generation (`gc.freeze`), so full collections stop scanning it. "
        "The test suite turns it off (its processes start hundreds of apps).",
    )
    log_level: str = Field(default="INFO", description="Python log level name.")
    log_format: Literal["json", "text"] = Field(default="json", description="Log line format.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body a service accepts."
    )
    outbox_retention_hours: float = Field(
        default=168.0, ge=0, description="How long published outbox rows are kept for replay."
    )
    outbox_poll_interval_s: float = Field(
        default=1.0, gt=0, description="Relay polling fallback when no NOTIFY arrives."
    )
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000, description="Relay batch size.")


class BaseServiceSettings(BaseSettings):
    """What every process of a node has, stateless ones (the gateway) included."""

    # hide_input_in_errors: a refused secret must not be echoed into a log.
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    service_name: str = "service"
    node: NodeSettings = Field(default_factory=NodeSettings)
    host: str = Field(default="127.0.0.1", description="Interface the service listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the service listens on.")

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> BaseServiceSettings:
        if self.node.environment != "production":
            return self
        for name, value in self:
            if isinstance(value, SecretStr) and is_placeholder_secret(value.get_secret_value()):
                env = f"{self.model_config.get('env_prefix', '')}{name}".upper()
                raise ValueError(f"{env} holds a placeholder secret; set a real one in production")
        return self


class ServiceSettings(BaseServiceSettings):
    """Base of a stateful service's settings (its own database); subclasses set ``env_prefix``."""

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/tongban",
        description="SQLAlchemy URL of the service's own database (asyncpg driver).",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200, description="Connection pool size.")
    run_workers: bool = Field(
        default=True,
        description="Run the outbox relay and event consumers inside the API process.",
    )
    client_id: str | None = Field(
        default=None,
        description="The service's own OAuth client id at identity (its service account), for "
        "calls to other services; `tongban node up` enrols the service and sets it.",
    )
    client_key_file: Path | None = Field(
        default=None,
        description="PEM file with the service account's private key (EC P-256), whose public "
        "half identity holds; set with `CLIENT_ID` by `tongban node up`.",
    )

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, value: str) -> str:
        # Operators paste plain postgres:// URLs; the services are async end to end.
        for plain in ("postgresql://", "postgres://"):
            if value.startswith(plain):
                return "postgresql+asyncpg://" + value[len(plain) :]
        return value
