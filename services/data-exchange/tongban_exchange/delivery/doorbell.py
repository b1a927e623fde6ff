"""Wakes a department's waiting long polls when pull deliveries for it commit in this process.

A long poll takes the department's bell *before* it reads, so a commit that lands between its
read and its wait still wakes it. Deliveries committed by another replica are seen by the poll's
fallback interval (``pull`` in ``delivery.endpoints``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


class Doorbell:
    def __init__(self) -> None:
        self._bells: dict[str, asyncio.Event] = {}

    def bell(self, department: str) -> asyncio.Event:
        """The event the next ``ring`` for ``department`` sets."""
        bell = self._bells.get(department)
        if bell is None:
            bell = self._bells[department] = asyncio.Event()
        return bell

    def ring(self, departments: Iterable[str]) -> None:
        for department in set(departments):
            bell = self._bells.pop(department, None)
            if bell is not None:
                bell.set()
