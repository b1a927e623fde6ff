"""What the service's handlers, workers and endpoints share, built once per app.

``create_app`` makes it (pure: a cipher and metrics); the lifespan adds the HTTP client that
talks to identity. Handlers get it by closure, endpoints from ``app.state.exchange``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import Counter, Gauge, Histogram

from tongban_exchange.delivery.doorbell import Doorbell
from tongban_exchange.settings import ExchangeSettings
from tongban_kit.crypto import FieldCipher
from tongban_kit.events.compact import compact_json
from tongban_kit.observability.metrics import ServiceMetrics

if TYPE_CHECKING:
    from tongban_exchange.delivery.dispatcher import Dispatcher
    from tongban_exchange.national.link import CentralLink

logger = logging.getLogger("tongban.exchange")

_DEVELOPMENT_KEY = base64.b64encode(hashlib.sha256(b"tongban-exchange-development").digest())
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0)


class ExchangeMetrics:
    """Per dataset and department: delivered, failed, dead-lettered, lag, latency."""

    def __init__(self, base: ServiceMetrics) -> None:
        r = base.registry
        labels = ["dataset", "department"]
        self.delivered = Counter(
            "tongban_exchange_delivered", "Deliveries made", [*labels, "mode"], registry=r
        )
        self.failed = Counter(
            "tongban_exchange_failed", "Delivery attempts that failed", labels, registry=r
        )
        self.dead_lettered = Counter(
            "tongban_exchange_dead_lettered",
            "Deliveries given up, and events refused at the border (department `-`)",
            labels,
            registry=r,
        )
        self.lag = Gauge(
            "tongban_exchange_lag", "Deliveries waiting to be made (last seen)", labels, registry=r
        )
        self.latency = Histogram(
            "tongban_exchange_delivery_latency_seconds",
            "From the event's time to its delivery",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.national_forwarded = Counter(
            "tongban_exchange_national_forwarded",
            "National events the central node took from this node",
            registry=r,
        )
        self.national_failed = Counter(
            "tongban_exchange_national_forward_failed",
            "Forwards to the central node that failed and wait to be retried",
            registry=r,
        )
        self.national_refused = Counter(
            "tongban_exchange_national_refused",
            "National events the central node refused for good",
            registry=r,
        )
        self.national_pending = Gauge(
            "tongban_exchange_national_pending",
            "National events waiting to be forwarded to the central node",
            registry=r,
        )
        self.national_oldest_pending = Gauge(
            "tongban_exchange_national_oldest_pending_seconds",
            "Age of the oldest national event waiting for the central node (0: none)",
            registry=r,
        )
        self.national_received = Counter(
            "tongban_exchange_national_received",
            "National events other nodes forwarded to this (central) node",
            ["node", "outcome"],
            registry=r,
        )


def data_cipher(settings: ExchangeSettings) -> FieldCipher:
    if settings.data_keys is not None:
        return FieldCipher.from_secret(settings.data_keys.get_secret_value())
    logger.warning("TONGBAN_EXCHANGE_DATA_KEYS is unset: data is sealed with the public dev key")
    return FieldCipher.from_secret(f"dev:{_DEVELOPMENT_KEY.decode()}")


@dataclass
class Exchange:
    settings: ExchangeSettings
    cipher: FieldCipher
    metrics: ExchangeMetrics = field(init=False)  # needs the app's registry: set by create_app
    http: httpx.AsyncClient | None = None
    link: CentralLink | None = None  # the link to central (national data), when configured
    dispatcher: Dispatcher | None = None  # takes fresh deliveries from routing, while it runs
    pulls: Doorbell = field(default_factory=Doorbell)  # wakes long polls on new pull deliveries
    state: Any = None  # the app's state, for the service tokens once the app runs
    extra: dict[str, Any] = field(default_factory=dict)

    def seal(self, value: dict[str, Any], *, context: str) -> bytes:
        return self.cipher.encrypt(compact_json(value), context=context)

    def unseal(self, token: bytes, *, context: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.unseal_text(token, context=context))
        return value

    def unseal_text(self, token: bytes, *, context: str) -> str:
        """The sealed value's JSON text, as sealed (what is delivered, byte for byte)."""
        return self.cipher.decrypt(token, context=context)

    async def identity_headers(self) -> dict[str, str] | None:
        """Bearer headers of this service's client at identity, or None if not enrolled."""
        tokens = getattr(self.state, "service_tokens", None)
        if tokens is None:
            return None
        headers: dict[str, str] = await tokens.headers()
        return headers

    def identity_url(self) -> str:
        """Identity's internal base URL (``NodeSettings.identity_url``)."""
        return self.settings.node.identity_url.rstrip("/")
