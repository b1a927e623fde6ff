"""Identity's settings (``TONGBAN_IDENTITY_*``)."""

from __future__ import annotations

import base64
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from tongban_identity.keys.sealing import DEVELOPMENT_KEY
from tongban_kit.crypto import FieldCipher, KeyringError
from tongban_kit.settings import ServiceSettings

#: Hard ceiling of an access token's lifetime; retired keys stay published this long and more.
MAX_ACCESS_TOKEN_TTL_S = 600


class IdentitySettings(ServiceSettings):
    # hide_input_in_errors: a malformed key setting must not be echoed into a log.
    model_config = SettingsConfigDict(
        env_prefix="TONGBAN_IDENTITY_", extra="ignore", hide_input_in_errors=True
    )

    service_name: str = "identity"
    port: int = Field(default=8001, description="Port the service listens on.")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/tongban_identity",
        description="SQLAlchemy URL of the service's own database (asyncpg driver).",
    )
    key_encryption_key: SecretStr | None = Field(
        default=None,
        description="Encrypts the token signing keys at rest (AES-256-GCM): `kid:base64key`, 32 "
        'random bytes, comma-separated, last one current (`python -c "from tongban_kit.crypto '
        "import generate_key_setting as g; print(g('k1'))\"`). Required in production; in "
        "development unset means a fixed, publicly known key.",
    )
    pii_keys: SecretStr | None = Field(
        default=None,
        description="Seals resident ID and phone numbers at rest (AES-256-GCM): `kid:base64key`, "
        "comma-separated, last one current; older keys keep decrypting old rows. Required in "
        "production; in development unset means a fixed, publicly known key.",
    )
    blind_index_key: SecretStr | None = Field(
        default=None,
        description="Base64 of at least 32 random bytes: the HMAC key of the resident-ID look-up "
        "index. Changing it means re-indexing every person. Required in production.",
    )
    pairwise_key: SecretStr | None = Field(
        default=None,
        description="Base64 of at least 32 random bytes: the HMAC key that derives the pairwise "
        "pseudonym each department knows a person by. Pseudonyms already handed out are stored "
        "and stay; a new key changes only those not yet made. Required in production; in "
        "development unset means a fixed, publicly known key.",
    )
    key_rotation_days: int = Field(
        default=0,
        ge=0,
        le=3650,
        description="Rotate the signing key when the active one is this many days old, checked "
        "when identity starts; 0 = only by `python -m tongban_identity.keys rotate`.",
    )
    document_key_rotation_days: int = Field(
        default=0,
        ge=0,
        le=3650,
        description="Rotate the document-signing key (e-licences, audit checkpoints) when the "
        "active one is this many days old, checked when identity starts; 0 = only by `python -m "
        "tongban_identity.signatures rotate-key`. Retired document keys stay published for good.",
    )
    node_key_file: Path | None = Field(
        default=None,
        description="PEM file of this node's P-256 key, the same file as "
        "`TONGBAN_GATEWAY_NODE_KEY_FILE`: at the central node it signs the directory, and "
        "`tongban nodes enrol` publishes its public half. Unset: the development key of the node "
        "code (refused in production).",
    )
    node_name: str = Field(
        default="",
        max_length=200,
        description="This node's name in the directory (e.g. 深圳市); empty: the node code.",
    )
    gateway_url: str | None = Field(
        default=None,
        description="This node's public gateway URL as other nodes reach it (its directory "
        "entry). Unset: `TONGBAN_TOKEN_ISSUER` without its `/api/identity`.",
    )
    directory_valid_s: int = Field(
        default=600,
        ge=60,
        le=86_400,
        description="Central node only: how long a signed directory stays valid after it was "
        "issued (its `exp`); nodes keep working on a cached copy until then.",
    )
    access_token_ttl_s: int = Field(
        default=300,
        ge=30,
        le=MAX_ACCESS_TOKEN_TTL_S,
        description="Lifetime of an access token in seconds (at most 600).",
    )
    login_scope: str = Field(
        default="openid profile",
        description="Scopes of the access token a person's login gets, space separated.",
    )
    refresh_token_ttl_s: int = Field(
        default=43_200,
        ge=60,
        le=30 * 86_400,
        description="A refresh token unused this many seconds expires; each rotation issues a "
        "fresh one, within `TONGBAN_IDENTITY_SESSION_MAX_S`.",
    )
    session_max_s: int = Field(
        default=604_800,
        ge=300,
        le=90 * 86_400,
        description="A sign-in ends this many seconds after the password was entered, however "
        "often it is refreshed.",
    )
    refresh_reuse_grace_s: float = Field(
        default=10.0,
        ge=0,
        le=60,
        description="A spent refresh token presented again within this many seconds (a client "
        "retrying after a lost answer) gets a new pair; later, its whole sign-in is revoked.",
    )
    login_backoff_free_failures: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Failed logins per account before back-off: then each attempt waits "
        "`BASE_S` x 2^(failures - this) seconds after the last, up to `MAX_S`. A success "
        "resets the account; never a permanent lockout.",
    )
    login_backoff_address_free_failures: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="The same per client address (many people may share one); a success does "
        "not reset it. Behind the gateway, uvicorn's `FORWARDED_ALLOW_IPS` must name the "
        "gateway, or every login shares the gateway's address.",
    )
    login_backoff_base_s: float = Field(
        default=1.0, gt=0, le=60, description="First back-off step of failed logins, in seconds."
    )
    login_backoff_max_s: float = Field(
        default=900.0, gt=0, le=86_400, description="Longest back-off of failed logins, seconds."
    )

    @property
    def issuer(self) -> str:
        """The node's token issuer (``TONGBAN_TOKEN_ISSUER``): identity's public URL."""
        return self.node.token_issuer

    @property
    def token_audience(self) -> str:
        """The node's token audience (``TONGBAN_TOKEN_AUDIENCE``)."""
        return self.node.token_audience

    @field_validator("login_scope")
    @classmethod
    def _scope_is_tokens(cls, value: str) -> str:
        scopes = value.split()
        if not scopes or any(c in value for c in '"\\'):
            raise ValueError("space-separated scope tokens, without quotes or backslashes")
        return " ".join(scopes)

    @field_validator("key_encryption_key")
    @classmethod
    def _key_setting_parses(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                FieldCipher.from_secret(value.get_secret_value())
            except KeyringError as exc:  # its message never quotes the setting
                raise ValueError(str(exc)) from None
        return value

    @field_validator("pii_keys")
    @classmethod
    def _pii_keys_parse(cls, value: SecretStr | None) -> SecretStr | None:
        return cls._key_setting_parses(value)

    @field_validator("blind_index_key", "pairwise_key")
    @classmethod
    def _index_key_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                raw = base64.b64decode(value.get_secret_value(), validate=True)
            except ValueError:
                raise ValueError("not base64") from None
            if len(raw) < 32:
                raise ValueError("must be at least 32 random bytes")
        return value

    @model_validator(mode="after")
    def _key_required_in_production(self) -> IdentitySettings:
        if self.node.environment != "production":
            return self
        for name in ("pii_keys", "blind_index_key", "pairwise_key"):
            if getattr(self, name) is None:
                raise ValueError(f"TONGBAN_IDENTITY_{name.upper()} is required in production")
        if self.key_encryption_key is None:
            raise ValueError(
                "TONGBAN_IDENTITY_KEY_ENCRYPTION_KEY is required in production: it protects the "
                "token signing keys"
            )
        if DEVELOPMENT_KEY in self.key_encryption_key.get_secret_value():
            raise ValueError(
                "TONGBAN_IDENTITY_KEY_ENCRYPTION_KEY holds the public development key; set a "
                "real one in production"
            )
        return self


def public_gateway_url(settings: IdentitySettings) -> str:
    """This node's gateway URL as the directory lists it."""
    if settings.gateway_url:
        return settings.gateway_url.rstrip("/")
    issuer = settings.node.token_issuer
    return issuer.removesuffix("/api/identity")
