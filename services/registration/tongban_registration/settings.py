"""Registration's settings (``TONGBAN_REGISTRATION_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tongban_kit.settings import ServiceSettings


class RegistrationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TONGBAN_REGISTRATION_", extra="ignore")

    service_name: str = "registration"
    port: int = Field(default=8002, description="Port the service listens on.")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/tongban_registration",
        description="SQLAlchemy URL of the service's own database (asyncpg driver).",
    )
