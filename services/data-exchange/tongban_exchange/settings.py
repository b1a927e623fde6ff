"""Data-exchange's settings (``TONGBAN_EXCHANGE_*``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from tongban_kit.settings import ServiceSettings


class ExchangeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TONGBAN_EXCHANGE_", extra="ignore")

    service_name: str = "exchange"
    port: int = 8003
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/tongban_exchange"
