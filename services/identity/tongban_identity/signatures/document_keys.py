"""The node's document-signing key: separate from the token keys, published for good.

Lifecycle: one ``active`` key signs documents; ``rotate_document_key`` retires it (its private
half is erased at once) and makes a new active key. There is no ``next`` state as token keys
have: nobody has to hold a document key before the first document it signs, since documents
are verified later, from the document key set fetched then.

Retired keys are never unpublished: an e-licence signed years ago must still verify offline.

Document keys are published in their own key set (``/.well-known/document-jwks.json``), not in
the token key set (``/.well-known/jwks.json``) that every service's token verifier reads: a
token verifier never holds a document key, so no JWS made with one can pass as an access
token, whatever its header says. Their ``kid`` is ``doc-`` + the RFC 7638 thumbprint, so a
document key is recognisable wherever it turns up.

Private halves are sealed like the token keys' (``keys.sealing.KeyVault`` with the
key-encryption key; the AAD names the ``doc-`` kid), in a vault of their own so signing
documents and tokens does not evict each other's unsealed key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tongban_identity.keys.sealing import KeyVault, key_cipher
from tongban_identity.settings import IdentitySettings
from tongban_identity.signatures import repository
from tongban_identity.signatures.jws import b64url_encode, thumbprint
from tongban_identity.signatures.models import DocumentSigningKey
from tongban_kit.db import build_engine, build_sessionmaker
from tongban_kit.errors import ServiceUnavailable

ALGORITHM = "ES256"
KID_PREFIX = "doc-"


@dataclass(frozen=True)
class SigningDocumentKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Rotation:
    active: str
    retired: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _public_jwk(private_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    numbers = private_key.public_key().public_numbers()
    public = {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
    }
    kid = KID_PREFIX + thumbprint(public)
    return {**public, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def _new_key(vault: KeyVault, *, now: datetime) -> DocumentSigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_jwk = _public_jwk(private_key)
    kid = public_jwk["kid"]
    return DocumentSigningKey(
        kid=kid,
        alg=ALGORITHM,
        public_jwk=public_jwk,
        private_key_encrypted=vault.seal(kid, private_key),
        state="active",
        created_at=now,
    )


async def ensure_document_key(session: AsyncSession, *, vault: KeyVault) -> str:
    """The active document key's kid; on a fresh node, create it."""
    await repository.lock_document_keys(session)
    active = await repository.get_active_document_key(session)
    if active is None:
        active = await repository.add_document_key(session, _new_key(vault, now=_now()))
    return active.kid


async def rotate_document_key(session: AsyncSession, *, vault: KeyVault) -> Rotation:
    """Retire the active document key (erasing its private half) and make a new one."""
    await repository.lock_document_keys(session)
    now = _now()
    current = await repository.get_active_document_key(session)
    if current is not None:  # one statement at a time: the unique index allows one active key
        await repository.retire_document_key(session, current.kid, at=now)
    new = await repository.add_document_key(session, _new_key(vault, now=now))
    return Rotation(active=new.kid, retired=current.kid if current else None)


async def rotate_document_key_if_due(
    session: AsyncSession, *, vault: KeyVault, rotation_days: int
) -> Rotation | None:
    """Rotate if the active key is ``rotation_days`` old or older (0: never)."""
    if rotation_days <= 0:
        return None
    await repository.lock_document_keys(session)
    active = await repository.get_active_document_key(session)
    if active is None or _now() - active.created_at < timedelta(days=rotation_days):
        return None
    return await rotate_document_key(session, vault=vault)


async def signing_key(session: AsyncSession, *, vault: KeyVault) -> SigningDocumentKey:
    """The document key that signs now, unsealed."""
    key = await repository.get_active_document_key(session)
    if key is None or key.private_key_encrypted is None:
        raise ServiceUnavailable("identity has no active document-signing key yet")
    return SigningDocumentKey(key.kid, vault.unseal(key.kid, key.private_key_encrypted))


async def published_document_keys(session: AsyncSession) -> list[dict[str, Any]]:
    """Every document key's public JWK, the active one first: none is ever withdrawn."""
    return [key.public_jwk for key in await repository.list_document_keys(session)]


async def prepare_document_key(
    sessionmaker: async_sessionmaker[AsyncSession], *, vault: KeyVault, rotation_days: int
) -> str:
    """On start: ensure an active document key, rotate it if due, prove it unseals."""
    async with sessionmaker() as session, session.begin():
        kid = await ensure_document_key(session, vault=vault)
        rotation = await rotate_document_key_if_due(
            session, vault=vault, rotation_days=rotation_days
        )
        await signing_key(session, vault=vault)
    return rotation.active if rotation else kid


async def rotate_document_keys(settings: IdentitySettings) -> Rotation:
    """Rotate once, in a transaction of its own (``python -m tongban_identity.signatures``)."""
    vault = KeyVault(key_cipher(settings.key_encryption_key))
    engine = build_engine(settings.database_url, pool_size=1)
    try:
        async with build_sessionmaker(engine)() as session, session.begin():
            return await rotate_document_key(session, vault=vault)
    finally:
        await engine.dispose()
