"""Identity's key settings: production needs a real key-encryption key; development warns."""

from __future__ import annotations

import base64
import logging
import secrets

import pytest
from pydantic import SecretStr, ValidationError

from tongban_identity.keys.sealing import DEVELOPMENT_KEY, key_cipher
from tongban_identity.settings import IdentitySettings
from tongban_kit.crypto import generate_key_setting
from tongban_kit.settings import NodeSettings


def production(**values: object) -> IdentitySettings:
    """Production settings with identity's other secrets set, so only the key rules decide."""
    return IdentitySettings(
        node=NodeSettings(environment="production"),
        pii_keys=SecretStr(generate_key_setting("p1")),
        blind_index_key=SecretStr(base64.b64encode(secrets.token_bytes(32)).decode()),
        pairwise_key=SecretStr(base64.b64encode(secrets.token_bytes(32)).decode()),
        **values,  # type: ignore[arg-type]
    )


def test_production_refuses_to_start_without_a_key_encryption_key() -> None:
    with pytest.raises(ValidationError, match="TONGBAN_IDENTITY_KEY_ENCRYPTION_KEY is required"):
        production()


def test_production_refuses_the_public_development_key() -> None:
    with pytest.raises(ValidationError, match="public development key"):
        production(key_encryption_key=SecretStr(f"dev:{DEVELOPMENT_KEY}"))


def test_production_accepts_a_generated_key() -> None:
    settings = production(key_encryption_key=SecretStr(generate_key_setting("2026-11")))

    assert settings.key_encryption_key is not None


@pytest.mark.parametrize("value", ["changeme", "k1:c2hvcnQ=", "not a keyring at all"])
def test_a_malformed_key_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        IdentitySettings(key_encryption_key=SecretStr(value))

    assert value not in str(refused.value)


def test_development_without_a_key_warns_that_the_key_is_public(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tongban.identity.keys"):
        cipher = key_cipher(IdentitySettings().key_encryption_key)

    assert cipher.decrypt(cipher.encrypt("pem", context="c"), context="c") == "pem"
    assert "TONGBAN_IDENTITY_KEY_ENCRYPTION_KEY is unset" in caplog.text


@pytest.mark.parametrize("ttl", [601, 3600])
def test_access_tokens_cannot_be_configured_to_live_over_ten_minutes(ttl: int) -> None:
    with pytest.raises(ValidationError, match="access_token_ttl_s"):
        IdentitySettings(access_token_ttl_s=ttl)
