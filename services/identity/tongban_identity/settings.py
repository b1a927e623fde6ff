"""Identity's settings (``TONGBAN_IDENTITY_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tongban_kit.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TONGBAN_IDENTITY_", extra="ignore")

    service_name: str = "identity"
    port: int = Field(default=8001, description="Port the service listens on.")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/tongban_identity",
        description="SQLAlchemy URL of the service's own database (asyncpg driver).",
    )
