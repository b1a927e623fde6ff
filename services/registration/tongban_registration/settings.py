"""Registration's settings (``TONGBAN_REGISTRATION_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from tongban_kit.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TONGBAN_REGISTRATION_", extra="ignore")

    service_name: str = "registration"
    port: int = 8002
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/tongban_registration"
