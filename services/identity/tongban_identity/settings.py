"""Identity's settings (``TONGBAN_IDENTITY_*``)."""

from __future__ import annotations

import base64

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
    issuer: str = Field(
        default="http://127.0.0.1:8000/api/identity",
        description="Token issuer (`iss`) and base of the discovery document: identity's public "
        "URL as the gateway serves it.",
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
    key_rotation_days: int = Field(
        default=0,
        ge=0,
        le=3650,
        description="Rotate the signing key when the active one is this many days old, checked "
        "when identity starts; 0 = only by `python -m tongban_identity.keys rotate`.",
    )
    access_token_ttl_s: int = Field(
        default=300,
        ge=30,
        le=MAX_ACCESS_TOKEN_TTL_S,
        description="Lifetime of an access token in seconds (at most 600).",
    )

    @field_validator("issuer")
    @classmethod
    def _issuer_is_a_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("the issuer must be an http(s) URL")
        return value.rstrip("/")

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

    @field_validator("blind_index_key")
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
        for name in ("pii_keys", "blind_index_key"):
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
