"""Registration as a client of data-exchange (service account `svc-registration`, scope
`exchange:query`): other departments' records that licence prerequisites depend on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from tongban_kit.auth import ServiceTokens
from tongban_kit.errors import TongbanError

QUERY_PATH = "/v1/datasets/{dataset}/records/{key}"  # scope exchange:query, under a grant


@dataclass(frozen=True)
class RecordAnswer:
    """A department's record, or why there is none to read."""

    data: dict[str, Any] | None
    problem: str | None = None


class ExchangeClient:
    """Queries data-exchange with the service account's bearer tokens."""

    def __init__(self, *, exchange_url: str, tokens: ServiceTokens, client: httpx.AsyncClient):
        self.base, self.tokens, self.client = exchange_url.rstrip("/"), tokens, client

    async def record(self, *, dataset: str, key: str, purpose: str) -> RecordAnswer:
        """The latest record of ``dataset`` under ``key``; a problem instead when there is
        none, registration holds no grant for it, or the exchange cannot be reached."""
        url = self.base + QUERY_PATH.format(dataset=quote(dataset, safe=""), key=quote(key))
        try:
            response = await self.client.get(
                url, params={"purpose": purpose}, headers=await self.tokens.headers(), timeout=5.0
            )
        except httpx.HTTPError:
            return RecordAnswer(None, "data-exchange could not be reached; try again later")
        except TongbanError as exc:  # identity gave no token
            return RecordAnswer(None, f"data-exchange could not be asked: {exc.detail}")
        if response.status_code == 401:
            self.tokens.forget()
        if response.status_code == 404:
            return RecordAnswer(None, f"{dataset} holds no record for this business")
        if response.status_code == 403:
            return RecordAnswer(None, f"registration may not read {dataset} (no grant)")
        if response.status_code != 200:
            return RecordAnswer(None, f"data-exchange answered {response.status_code}")
        data = response.json().get("data")
        return RecordAnswer(data if isinstance(data, dict) else {})
