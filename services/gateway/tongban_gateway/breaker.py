"""A circuit breaker per upstream, so a service that is down costs callers no waiting.

    closed ──(failures in a row ≥ threshold)──▶ open ──(open_s passed)──▶ half-open
       ▲                                          ▲                          │
       └──────────── probe succeeded ─────────────┼──── probe failed ────────┘

Closed, every request goes through. Open, every request is refused at once (the gateway
answers 503). Half-open, one request goes through as a probe while the others are still
refused; its outcome closes or reopens the breaker. A failure is a connection that could not
be made or a service that did not answer in time; any HTTP answer is a success.
"""

from __future__ import annotations

import time

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """One upstream's breaker (per gateway process)."""

    def __init__(self, *, threshold: int, open_s: float) -> None:
        self.threshold = threshold
        self.open_s = open_s
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._probing or time.monotonic() - self._opened_at >= self.open_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """Whether a request may go to the upstream now; True at most once while half-open
        (the probe), and the caller must then report its outcome."""
        if self._opened_at is None:
            return True
        if self._probing or time.monotonic() - self._opened_at < self.open_s:
            return False
        self._probing = True
        return True

    def retry_after_s(self) -> int:
        """Whole seconds until a probe may be let through."""
        if self._opened_at is None:
            return 0
        return max(1, int(self.open_s - (time.monotonic() - self._opened_at) + 0.999))

    def succeeded(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failed(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self.threshold:
            self._opened_at = time.monotonic()
        self._probing = False

    def released(self) -> None:
        """The request let through ended without telling either way (the caller left)."""
        self._probing = False
