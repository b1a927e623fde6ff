"""A delivery about to be made, as both of the dispatcher's ways in hand it over."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class Attempt:
    """One delivery about to be made: its row's identity and the projected event."""

    id: int
    grant_id: uuid.UUID
    department: str
    dataset: str
    mode: str
    value: dict[str, Any]
    text: str  # ``value`` as sealed and delivered (compact JSON)
    url: str | None = None
    attempts: int = 0  # made before this one
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    handed_at: float = field(default_factory=time.monotonic)
    error: str | None = None
