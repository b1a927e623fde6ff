"""Raising a person's level of assurance: never down, and each raise is an event.

* ``substantial``: a department or officer holding ``identity:assurance`` confirms the person
  against an authoritative record (``raise_to_substantial``).
* ``high``: the person proves possession of a key they registered, by signing a one-time
  challenge (``new_challenge``, then ``raise_to_high``). The person must already be at
  ``substantial`` and the key must have been registered by a sign-in at ``substantial`` or
  above: a key bound while the identity was merely self-asserted proves nothing about it.

The challenge is signed like any person's signature (``signatures.person_keys``), with
``"typ": "tongban-challenge+jws"`` and the challenge string as the unencoded payload. It is
good for two minutes and once.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.models import Person
from tongban_identity.signatures import repository
from tongban_identity.signatures.models import AssuranceChallenge
from tongban_identity.signatures.person_keys import InvalidSignature, verify_person_jws
from tongban_kit.auth import ASSURANCE_LEVELS, AssuranceLevel, assurance_at_least
from tongban_kit.errors import Conflict, NotFound
from tongban_kit.events import CloudEvent
from tongban_kit.outbox import add_event

ASSURANCE_RAISED = "gov.tongban.identity.person.assurance_raised.v1"
CHALLENGE_JWS_TYPE = "tongban-challenge+jws"
CHALLENGE_TTL = timedelta(minutes=2)
#: Unused, unexpired challenges a person may hold at once.
MAX_OPEN_CHALLENGES = 5

Method = Literal["key-possession", "authoritative-record"]


@dataclass(frozen=True)
class Raise:
    """The outcome of a request to raise a level: ``raised`` False if it was already there."""

    person_id: uuid.UUID
    loa: str
    previous_loa: str
    raised: bool


def _now() -> datetime:
    return datetime.now(UTC)


async def new_challenge(session: AsyncSession, *, person_id: uuid.UUID) -> AssuranceChallenge:
    """A fresh random challenge for the person, good for ``CHALLENGE_TTL`` and one use."""
    now = _now()
    await repository.delete_expired_challenges(session, before=now)
    if not await repository.person_exists(session, person_id):
        raise NotFound("the signed-in person does not exist")
    if await repository.count_open_challenges(session, person_id, now=now) >= MAX_OPEN_CHALLENGES:
        raise Conflict(f"at most {MAX_OPEN_CHALLENGES} open challenges; use one or let them expire")
    challenge = AssuranceChallenge(
        id=uuid.uuid4(),
        person_id=person_id,
        challenge=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + CHALLENGE_TTL,
    )
    await repository.add_challenge(session, challenge)
    return challenge


async def raise_to_high(
    session: AsyncSession, *, person_id: uuid.UUID, challenge_id: uuid.UUID, jws: str, node: str
) -> Raise:
    """Spend the challenge and, if ``jws`` signs it with a fit key of the person's, raise to
    ``high``. Refused: an unknown or another person's challenge (404), a used or expired one
    (409), a person below ``substantial`` (409), a bad signature or unfit key (400)."""
    now = _now()
    challenge = await repository.lock_challenge(
        session, challenge_id=challenge_id, person_id=person_id
    )
    if challenge is None:
        raise NotFound(f"no challenge {challenge_id}")
    if challenge.used_at is not None:
        raise Conflict("this challenge has been used; ask for a new one")
    if challenge.expires_at <= now:
        raise Conflict("this challenge has expired; ask for a new one")
    person = await _locked_person(session, person_id)
    if not assurance_at_least(person.loa, "substantial"):
        raise Conflict(
            "level high needs level substantial first: have the identity confirmed against an "
            "authoritative record"
        )
    key = await verify_person_jws(
        session, person_id=person_id, payload=challenge.challenge, jws=jws, typ=CHALLENGE_JWS_TYPE
    )
    if not assurance_at_least(key.registered_acr, "substantial"):
        raise InvalidSignature(
            "this key was registered by a sign-in below level substantial; register a key "
            "again after signing in at substantial"
        )
    await repository.mark_challenge_used(session, challenge.id, at=now)
    return await _raise(session, person, to="high", method="key-possession", node=node, now=now)


async def raise_to_substantial(
    session: AsyncSession, *, person_id: uuid.UUID, source: str, confirmed_by: str, node: str
) -> Raise:
    """Raise to ``substantial`` on the word of ``confirmed_by`` (a department client or an
    officer) who checked the person against ``source``; a person at or above it stays."""
    person = await _locked_person(session, person_id)
    return await _raise(
        session,
        person,
        to="substantial",
        method="authoritative-record",
        node=node,
        now=_now(),
        source=source,
        confirmed_by=confirmed_by,
    )


async def _locked_person(session: AsyncSession, person_id: uuid.UUID) -> Person:
    person = await repository.lock_person(session, person_id)
    if person is None:
        raise NotFound(f"no person {person_id}")
    return person


async def _raise(
    session: AsyncSession,
    person: Person,
    *,
    to: AssuranceLevel,
    method: Method,
    node: str,
    now: datetime,
    source: str | None = None,
    confirmed_by: str | None = None,
) -> Raise:
    previous = person.loa if person.loa in ASSURANCE_LEVELS else "low"
    if assurance_at_least(previous, to):
        return Raise(person.id, previous, previous, raised=False)
    await repository.set_loa(session, person, to)
    data: dict[str, str] = {
        "person_id": str(person.id),
        "node": node,
        "level": to,
        "previous_level": previous,
        "method": method,
        "raised_at": now.isoformat(),
    }
    if source is not None:
        data["source"] = source
    if confirmed_by is not None:
        data["confirmed_by"] = confirmed_by
    await add_event(
        session,
        CloudEvent.new(
            ASSURANCE_RAISED, source=f"/nodes/{node}/identity", subject=str(person.id), data=data
        ),
    )
    return Raise(person.id, to, previous, raised=True)
