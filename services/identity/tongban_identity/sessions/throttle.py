"""Back-off against password guessing, per account and per client address. Never a lockout.

After ``free_failures`` failures on a key, each further attempt waits
``base_s * 2^(failures - free_failures)`` seconds (capped at ``max_s``) after the last one; a
key quiet for ``FORGET_AFTER`` starts again from nothing. An attempt is counted as a failure
*before* its password is checked (``reserve``) and taken back on success (``succeeded``): a
burst of parallel guesses therefore meets the back-off too, instead of all passing the check
before the first failure is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.sessions import repository

#: A key without attempts for this long is forgotten: failures restart from zero.
FORGET_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Backoff:
    free_failures: int
    base_s: float
    max_s: float

    def delay(self, failures: int) -> float:
        """Seconds the next attempt waits after ``failures`` counted failures."""
        if failures < self.free_failures:
            return 0.0
        exponent = min(failures - self.free_failures, 62)  # 2^62 s is past any cap
        return min(self.base_s * 2.0**exponent, self.max_s)


def account_key(resident_id_index: str) -> str:
    """By blind index: the same for an account that exists and one that does not."""
    return f"account:{resident_id_index}"


def address_key(host: str) -> str:
    return f"ip:{host[:90]}"


@dataclass(frozen=True)
class Refused:
    """The attempt came too early; try again in ``retry_after_s`` seconds."""

    retry_after_s: int


async def reserve(
    session: AsyncSession, keys: Mapping[str, Backoff], *, now: datetime
) -> Refused | None:
    """Count this attempt against every key, or refuse it if any key is backing off.

    Run in a short transaction of its own that commits before the password is checked.
    """
    rows = await repository.lock_throttles(session, list(keys), now=now)
    wait = max((row.next_allowed_at - now).total_seconds() for row in rows)
    if wait > 0:
        return Refused(retry_after_s=max(1, math.ceil(wait)))
    for row in rows:
        failures = 1 if now - row.updated_at > FORGET_AFTER else row.failures + 1
        delay = keys[row.key].delay(failures)
        # Without a delay the back-off never moves forward: ``now`` is when this request
        # began, and a request that began earlier may take the lock after this one; set to
        # this ``now``, it would find itself "too early" and get a spurious 429.
        next_allowed_at = now + timedelta(seconds=delay) if delay else min(row.next_allowed_at, now)
        await repository.set_throttle(
            session, row.key, failures=failures, next_allowed_at=next_allowed_at, now=now
        )
    return None


async def succeeded(
    session: AsyncSession, *, account: str, address: tuple[str, Backoff] | None, now: datetime
) -> None:
    """A sign-in succeeded: clear the account's count, take this attempt back from the address.

    The address keeps its other failures: one good password must not wipe out a spray of
    guesses at other accounts from the same place.
    """
    await repository.clear_throttle(session, account, now=now)
    if address is not None:
        key, backoff = address
        await repository.uncount_attempt(session, key, free_failures=backoff.free_failures, now=now)
