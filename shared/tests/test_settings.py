"""Settings: read from the environment, and refusing placeholder secrets in production."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from tongban_kit.settings import NodeSettings, ServiceSettings


class _Demo(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TONGBAN_DEMO_", extra="ignore")

    signing_secret: SecretStr = SecretStr("changeme")


def test_service_settings_read_their_prefix_and_node_settings_theirs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TONGBAN_DEMO_PORT", "9100")
    monkeypatch.setenv("TONGBAN_NODE_CODE", "310000")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")

    settings = _Demo()

    assert settings.port == 9100
    assert settings.node.node_code == "310000"
    assert settings.node.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_plain_postgres_urls_get_the_async_driver() -> None:
    settings = _Demo(database_url="postgresql://u:p@db:5432/x")

    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/x"


def test_production_refuses_a_placeholder_secret() -> None:
    production = NodeSettings(environment="production")

    with pytest.raises(ValidationError, match="TONGBAN_DEMO_SIGNING_SECRET"):
        _Demo(node=production)
    assert _Demo(node=production, signing_secret=SecretStr("x7Gq2vR9kLmP4sTz8wYb"))


def test_development_accepts_the_placeholder() -> None:
    assert _Demo().signing_secret.get_secret_value() == "changeme"


def test_a_node_code_must_be_six_digits() -> None:
    with pytest.raises(ValidationError):
        NodeSettings(node_code="44030")


def test_secrets_never_appear_in_the_settings_repr() -> None:
    settings = _Demo(signing_secret=SecretStr("x7Gq2vR9kLmP4sTz8wYb"))

    assert "x7Gq2vR9kLmP4sTz8wYb" not in repr(settings)


def test_the_token_issuer_loses_a_trailing_slash_and_the_audience_names_the_node() -> None:
    node = NodeSettings(token_issuer="https://gov.example/api/identity/", node_code="310000")
    assert node.token_issuer == "https://gov.example/api/identity"
    assert node.token_audience == "tongban:310000"


@pytest.mark.parametrize("field", ["token_issuer", "jwks_url"])
def test_token_urls_must_be_urls(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        NodeSettings(**{field: "identity:8001"})
