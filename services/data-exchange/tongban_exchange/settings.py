"""Data-exchange's settings (``TONGBAN_EXCHANGE_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tongban_kit.settings import ServiceSettings


class ExchangeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TONGBAN_EXCHANGE_", extra="ignore")

    service_name: str = "exchange"
    port: int = Field(default=8003, description="Port the service listens on.")
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/tongban_exchange",
        description="SQLAlchemy URL of the service's own database (asyncpg driver).",
    )
