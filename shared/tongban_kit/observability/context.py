"""Per-request (or per-event) context: request id and W3C trace context, in contextvars."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = [
    "TraceContext",
    "current_request_id",
    "current_trace",
    "new_request_id",
    "parse_traceparent",
    "request_id_var",
    "trace_var",
]

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Ids name a request or a span; they guard nothing, so they come from a PRNG (as OpenTelemetry's
# id generator does), not a system call per id: three of those were ~3% of a proxied request.
_ids = random.Random()


def _hex(digits: int) -> str:
    return f"{_ids.getrandbits(digits * 4):0{digits}x}"


@dataclass(frozen=True, slots=True)
class TraceContext:
    """One span's view of a W3C trace: the trace it belongs to and its own span id."""

    trace_id: str
    span_id: str
    flags: str = "01"

    @classmethod
    def start(cls) -> TraceContext:
        return cls(_hex(32), _hex(16))

    def child(self) -> TraceContext:
        """A new span in the same trace (what a service does with an incoming traceparent)."""
        return TraceContext(self.trace_id, _hex(16), self.flags)

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: str | None) -> TraceContext | None:
    """The trace named by a ``traceparent`` header, or None when absent or malformed."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match or match[1] == "0" * 32 or match[2] == "0" * 16:
        return None
    return TraceContext(match[1], match[2], match[3])


def new_request_id(incoming: str | None = None) -> str:
    """Keep a caller's well-formed request id; otherwise make one."""
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    return _hex(32)


request_id_var: ContextVar[str | None] = ContextVar("tongban_request_id", default=None)
trace_var: ContextVar[TraceContext | None] = ContextVar("tongban_trace", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def current_trace() -> TraceContext | None:
    return trace_var.get()
