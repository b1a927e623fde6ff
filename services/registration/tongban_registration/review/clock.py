"""The statutory clock: a promised decision date counted in working days."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

#: Offices keep Beijing time; a submission at 23:30 UTC is the next working day's.
OFFICE_TIME = ZoneInfo("Asia/Shanghai")


def office_date(moment: datetime) -> date:
    return moment.astimezone(OFFICE_TIME).date()


def add_working_days(start: date, days: int, holidays: Collection[date] = ()) -> date:
    """The ``days``-th working day after ``start`` (weekends and ``holidays`` skipped)."""
    current, left = start, days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in holidays:
            left -= 1
    return current
