"""The signing-key lifecycle.

The rule, in order of a key's life:

1. **next** — a key is created as ``next`` and published in the JWKS at once, but does not
   sign. Verifiers pick it up on their next refresh (or on first sight of its kid), so by the
   time it signs they already hold it.
2. **active** — ``rotate`` promotes ``next`` to ``active``; the active key signs every token.
   There is exactly one active and one next key; a partial unique index enforces "at most",
   ``ensure_keys`` on every start "at least" (a fresh node gets both at once).
3. **retired** — the same ``rotate`` retires the previous active key and creates a new
   ``next``. A retired key never signs again, so its private half is erased at once; its
   public half stays in the JWKS until ``retired_at + MAX_ACCESS_TOKEN_TTL_S + margin``
   (``RETIRED_KEYS_PUBLISHED_FOR``), so every token it signed can still be verified until it
   expires. After that it stays in the table, unpublished, as a record.

Every change takes a transaction-scoped advisory lock, so replicas starting together or an
operator rotating during a start cannot produce two active keys.
Rotation: ``python -m tongban_identity.keys rotate`` (``rotate_keys``), or on start when the
active key is older than ``TONGBAN_IDENTITY_KEY_ROTATION_DAYS`` (``rotate_if_due``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_identity.keys import repository
from tongban_identity.keys.models import SigningKey
from tongban_identity.keys.sealing import KeyVault, key_cipher
from tongban_identity.settings import MAX_ACCESS_TOKEN_TTL_S, IdentitySettings
from tongban_kit.db import build_engine, build_sessionmaker
from tongban_kit.errors import ServiceUnavailable

ALGORITHM = "ES256"
#: Clock skew verifiers allow plus the age of their JWKS copy, with room to spare.
RETIRED_KEY_MARGIN = timedelta(minutes=5)
RETIRED_KEYS_PUBLISHED_FOR = timedelta(seconds=MAX_ACCESS_TOKEN_TTL_S) + RETIRED_KEY_MARGIN


@dataclass(frozen=True)
class KeySet:
    """Which key is which after a lifecycle step."""

    active: str
    next: str
    retired: str | None = None


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey


def _now() -> datetime:
    return datetime.now(UTC)


def _thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: the kid is derived from the key, so it cannot collide."""
    canonical = json.dumps(
        {name: public_jwk[name] for name in ("crv", "kty", "x", "y")},
        separators=(",", ":"),
        sort_keys=True,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _new_key(vault: KeyVault, *, state: str, now: datetime) -> SigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    kid = _thumbprint(public_jwk)
    return SigningKey(
        kid=kid,
        alg=ALGORITHM,
        public_jwk={**public_jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"},
        private_key_encrypted=vault.seal(kid, private_key),
        state=state,
        created_at=now,
        activated_at=now if state == "active" else None,
    )


async def ensure_keys(session: AsyncSession, *, vault: KeyVault) -> KeySet:
    """Make sure there is one active and one next key; on a fresh node, create both."""
    await repository.lock(session)
    return await _ensure_locked(session, vault=vault, now=_now())


async def _ensure_locked(session: AsyncSession, *, vault: KeyVault, now: datetime) -> KeySet:
    live = await repository.get_live(session)
    if "active" not in live:
        if "next" in live:  # only if someone removed the active key by hand
            await repository.activate(session, live["next"].kid, at=now)
            active_kid = live.pop("next").kid
        else:
            active_kid = (
                await repository.add(session, _new_key(vault, state="active", now=now))
            ).kid
    else:
        active_kid = live["active"].kid
    if "next" not in live:
        next_kid = (await repository.add(session, _new_key(vault, state="next", now=now))).kid
    else:
        next_kid = live["next"].kid
    return KeySet(active=active_kid, next=next_kid)


async def rotate(session: AsyncSession, *, vault: KeyVault) -> KeySet:
    """Promote next to active, retire the active key, create a new next key."""
    await repository.lock(session)
    now = _now()
    current = await _ensure_locked(session, vault=vault, now=now)
    # One statement at a time: the unique index allows one active key at every moment.
    await repository.retire(session, current.active, at=now)
    await repository.activate(session, current.next, at=now)
    new_next = await repository.add(session, _new_key(vault, state="next", now=now))
    return KeySet(active=current.next, next=new_next.kid, retired=current.active)


async def rotate_if_due(
    session: AsyncSession, *, vault: KeyVault, rotation_days: int
) -> KeySet | None:
    """Rotate if the active key has been active ``rotation_days`` or longer (0: never)."""
    if rotation_days <= 0:
        return None
    await repository.lock(session)
    active = await repository.get_active(session)
    if active is None or active.activated_at is None:
        return None
    if _now() - active.activated_at < timedelta(days=rotation_days):
        return None
    return await rotate(session, vault=vault)


async def published_keys(session: AsyncSession) -> list[dict[str, Any]]:
    """The public JWKs to publish: next, active, and retired ones still within their window."""
    keys = await repository.list_published(
        session, retired_after=_now() - RETIRED_KEYS_PUBLISHED_FOR
    )
    order = {"active": 0, "next": 1, "retired": 2}
    return [key.public_jwk for key in sorted(keys, key=lambda k: order.get(k.state, 3))]


async def active_key(
    session: AsyncSession, *, vault: KeyVault, known_kid: str | None = None
) -> ActiveKey:
    """The key that signs now, unsealed. ``known_kid``: the active key's kid as the caller
    just read it; if the vault holds that key unsealed already, no query is needed."""
    if known_kid is not None and (unsealed := vault.unsealed(known_kid)) is not None:
        return ActiveKey(known_kid, unsealed)
    key = await repository.get_active(session)
    if key is None or key.private_key_encrypted is None:
        raise ServiceUnavailable("identity has no active signing key yet")
    return ActiveKey(key.kid, vault.unseal(key.kid, key.private_key_encrypted))


async def prepare_keys(
    sessionmaker: async_sessionmaker[AsyncSession], *, vault: KeyVault, rotation_days: int
) -> KeySet:
    """On start: ensure both keys, rotate if due, and prove the active key unseals."""
    async with sessionmaker() as session, session.begin():
        keys = await ensure_keys(session, vault=vault)
        keys = await rotate_if_due(session, vault=vault, rotation_days=rotation_days) or keys
        await active_key(session, vault=vault)
    return keys


async def rotate_keys(database_url: str, settings: IdentitySettings) -> KeySet:
    """Rotate once, in a transaction of its own (for ``python -m tongban_identity.keys``)."""
    vault = KeyVault(key_cipher(settings.key_encryption_key))
    engine = build_engine(database_url, pool_size=1)
    try:
        async with build_sessionmaker(engine)() as session, session.begin():
            return await rotate(session, vault=vault)
    finally:
        await engine.dispose()
