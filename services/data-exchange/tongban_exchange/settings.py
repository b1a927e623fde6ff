"""Data-exchange's settings (``TONGBAN_EXCHANGE_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from tongban_kit.crypto import FieldCipher, KeyringError
from tongban_kit.settings import ServiceSettings


class ExchangeSettings(ServiceSettings):
    # populate_by_name: tests and callers may pass redis_url=... despite its aliases.
    model_config = SettingsConfigDict(
        env_prefix="TONGBAN_EXCHANGE_", extra="ignore", populate_by_name=True
    )

    service_name: str = "exchange"
    port: int = Field(default=8003, description="Port the service listens on.")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/tongban_exchange",
        description="SQLAlchemy URL of the service's own database (asyncpg driver).",
    )
    data_keys: SecretStr | None = Field(
        default=None,
        description="Seals event payloads, records and webhook secrets at rest (AES-256-GCM): "
        "`kid:base64key`, comma-separated, last one current. Required in production; in "
        "development unset means a fixed, publicly known key.",
    )
    webhook_retry_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long a webhook delivery is retried before it is dead-lettered.",
    )
    webhook_backoff_initial_s: float = Field(
        default=2.0, gt=0, description="Wait before the first webhook retry; doubles each time."
    )
    webhook_backoff_max_s: float = Field(
        default=900.0, gt=0, description="Longest wait between two webhook attempts."
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, description="Time a department's webhook has to answer."
    )
    dispatch_interval_s: float = Field(
        default=0.5,
        gt=0,
        description="How often the dispatcher looks for due deliveries: retries, "
        "redeliveries, and deliveries another process routed and left (fresh ones are handed "
        "over in memory at once).",
    )
    handoff_lease_s: float = Field(
        default=15.0,
        gt=0,
        description="How long a fresh Kafka or webhook delivery belongs to the process that "
        "routed it (sent straight from memory) before any dispatcher may poll it: how soon "
        "deliveries are made by another replica after the routing process dies. Longer than "
        "`webhook_timeout_s`.",
    )
    pull_max_wait_s: float = Field(
        default=30.0, ge=0, description="Longest long-poll a pull request may ask for."
    )
    checkpoint_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=60.0,
        description="How often the message log's head is signed by identity (at most 60 s).",
    )

    national_directory_url: str | None = Field(
        default=None,
        description="Where the central node publishes the signed node directory (central's "
        "identity `/.well-known/tongban-directory.jwt`). Set: national events are forwarded to "
        "central (regional node) or accepted from the directory's nodes (central node). Unset: "
        "national exchange is off and `POST /v1/national/events` answers 404.",
    )
    national_anchor_file: Path | None = Field(
        default=None,
        description="JWKS of the central node's key, which must have signed the directory. "
        "Unset: the central node's development key (refused in production).",
    )
    national_central_url: str | None = Field(
        default=None,
        description="Base URL of central's data-exchange API as this node reaches it. Unset: "
        "the central node's gateway URL from the directory + `/api/exchange`.",
    )
    node_key_file: Path | None = Field(
        default=None,
        description="PEM file of this node's P-256 key (the gateway's and identity's file), "
        "which signs the node assertions of forwarded national events. Unset: a fixed "
        "development key outside production.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TONGBAN_EXCHANGE_REDIS_URL", "REDIS_URL"),
        description="Redis shared by every data-exchange process of the node (also read from "
        "`REDIS_URL`): the `jti` of the node assertions central checks are remembered there, "
        "so a replay is refused by every replica. Unset: each process remembers its own.",
    )
    national_refresh_s: float = Field(
        default=60.0, gt=0, description="Seconds between fetches of the node directory."
    )
    national_interval_s: float = Field(
        default=0.2, gt=0, description="How often pending national forwards are looked for."
    )
    national_feed_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often a regional node reads central's feed of other nodes' national "
        "events.",
    )
    national_backoff_initial_s: float = Field(
        default=1.0, gt=0, description="Wait after a failed forward to central; doubles each time."
    )
    national_backoff_max_s: float = Field(
        default=300.0, gt=0, description="Longest wait between two forwards to central."
    )
    national_retention_hours: float = Field(
        default=168.0,
        gt=0,
        description="How long a national event central took stays in `national_forwards` "
        "(pending and refused ones stay until dealt with).",
    )

    @field_validator("data_keys")
    @classmethod
    def _data_keys_parse(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                FieldCipher.from_secret(value.get_secret_value())
            except KeyringError as exc:  # its message never quotes the setting
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_webhook(self) -> ExchangeSettings:
        if self.handoff_lease_s <= self.webhook_timeout_s:
            raise ValueError(
                "TONGBAN_EXCHANGE_HANDOFF_LEASE_S must be longer than "
                "TONGBAN_EXCHANGE_WEBHOOK_TIMEOUT_S (a fresh webhook delivery is in flight for "
                "up to the timeout)"
            )
        return self

    @model_validator(mode="after")
    def _keys_in_production(self) -> ExchangeSettings:
        if self.node.environment == "production" and self.data_keys is None:
            raise ValueError("TONGBAN_EXCHANGE_DATA_KEYS is required in production")
        if self.node.environment == "production" and self.national_directory_url is not None:
            for name in ("national_anchor_file", "node_key_file"):
                if getattr(self, name) is None:
                    raise ValueError(
                        f"TONGBAN_EXCHANGE_{name.upper()} is required in production when "
                        "TONGBAN_EXCHANGE_NATIONAL_DIRECTORY_URL is set"
                    )
        return self
