"""Wakes a department's waiting long polls when pull deliveries for it commit.

A long poll takes the department's bell *before* it reads, so a commit that lands between its
read and its wait still wakes it. The process that commits rings at once; every other replica
rings when PostgreSQL's notification reaches it (``delivery.wakeups``), and a poll that no
ring reaches still reads again after a while (``pull`` in ``delivery.endpoints``).
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

    def ring_all(self) -> None:
        """Wake every waiting poll, to read again (after rings may have been missed)."""
        bells, self._bells = self._bells, {}
        for bell in bells.values():
            bell.set()
