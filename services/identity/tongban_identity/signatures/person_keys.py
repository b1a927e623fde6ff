"""Persons' own signing keys: registering, listing, revoking, and checking their signatures.

A person's signature is made the way the node makes its own (``signatures.jws``): a detached
JWS with ``"b64": false, "crit": ["b64"]``, ``kid`` the key's RFC 7638 thumbprint (returned
when the key is registered), ``alg`` ES256 for a P-256 key, EdDSA (or Ed25519) for an Ed25519
key, and a ``typ`` saying what is signed, so a signature made for one purpose is refused for
another:

* ``tongban-document+jws`` over a document's SHA-256 (64 lowercase hex digits);
* ``tongban-challenge+jws`` over an assurance challenge (``signatures.assurance``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.signatures import repository
from tongban_identity.signatures.documents import DOCUMENT_JWS_TYPE
from tongban_identity.signatures.jws import (
    JwsError,
    load_public_key,
    normalise_public_jwk,
    parse_unencoded,
    verify_signature,
)
from tongban_identity.signatures.models import PersonKey
from tongban_kit.auth import AssuranceLevel
from tongban_kit.errors import BadRequest, Conflict, NotFound

#: Live (unrevoked) keys a person may hold at once.
MAX_LIVE_KEYS = 10


class InvalidSignature(BadRequest):
    """A person's signature that does not prove what it should (400); the detail says why."""

    type_slug = "invalid-signature"


class InvalidKey(BadRequest):
    """A public key that cannot be registered (400)."""

    type_slug = "invalid-key"


async def register_key(
    session: AsyncSession,
    *,
    person_id: uuid.UUID,
    jwk: Mapping[str, Any],
    acr: AssuranceLevel,
) -> PersonKey:
    """Store a person's public key; ``acr`` is the level of the sign-in that registers it."""
    try:
        public = normalise_public_jwk(jwk)
    except JwsError as exc:
        raise InvalidKey(str(exc)) from None
    if not await repository.person_exists(session, person_id):
        raise NotFound("the signed-in person does not exist")
    if await repository.count_live_person_keys(session, person_id) >= MAX_LIVE_KEYS:
        raise Conflict(f"a person holds at most {MAX_LIVE_KEYS} keys; revoke one first")
    try:
        return await repository.add_person_key(
            session,
            PersonKey(
                id=uuid.uuid4(),
                person_id=person_id,
                jwk=public,
                thumbprint=public["kid"],
                alg=public["alg"],
                registered_acr=acr,
            ),
        )
    except repository.KeyAlreadyRegistered:
        raise Conflict("this key is registered already; a key is registered once") from None


async def list_keys(session: AsyncSession, *, person_id: uuid.UUID) -> Sequence[PersonKey]:
    return await repository.list_person_keys(session, person_id)


async def revoke_key(session: AsyncSession, *, person_id: uuid.UUID, key_id: uuid.UUID) -> None:
    """Revoke one of the person's keys (again: no change); another person's key is not found."""
    key = await repository.get_person_key(session, person_id=person_id, key_id=key_id)
    if key is None:
        raise NotFound(f"no key {key_id}")
    await repository.revoke_person_key(session, key.id, at=datetime.now(UTC))


async def verify_person_jws(
    session: AsyncSession, *, person_id: uuid.UUID, payload: str, jws: str, typ: str
) -> PersonKey:
    """The person's key that made ``jws`` over ``payload`` with type ``typ``.

    ``InvalidSignature`` if the JWS is malformed, of another type, names no key of this
    person's, names a revoked key, uses an algorithm that key does not sign with, or does not
    verify over ``payload``.
    """
    try:
        parsed = parse_unencoded(jws, payload=payload)
    except JwsError as exc:
        raise InvalidSignature(str(exc)) from None
    if parsed.typ != typ:
        raise InvalidSignature(f'the JWS "typ" must be "{typ}"')
    if parsed.kid is None:
        raise InvalidSignature('the JWS names no key ("kid": the key\'s thumbprint)')
    key = await repository.get_person_key_by_thumbprint(
        session, person_id=person_id, thumbprint=parsed.kid
    )
    if key is None:
        raise InvalidSignature("the JWS names no key this person registered")
    if key.revoked_at is not None:
        raise InvalidSignature("the key that made this signature is revoked")
    algorithms = ("EdDSA", "Ed25519") if key.jwk["kty"] == "OKP" else ("ES256",)
    if parsed.alg not in algorithms:
        raise InvalidSignature(f"this key signs with {' or '.join(algorithms)} only")
    if not verify_signature(load_public_key(key.jwk), parsed.alg, parsed):
        raise InvalidSignature("the signature does not verify over what it should sign")
    return key


async def verify_person_signature(
    session: AsyncSession, *, person_id: uuid.UUID, document_sha256: str, jws: str
) -> PersonKey:
    """The person's key that signed the document with SHA-256 ``document_sha256`` (hex).

    For services checking a signed submission; raises ``InvalidSignature`` (400) otherwise,
    see ``verify_person_jws``.
    """
    return await verify_person_jws(
        session,
        person_id=person_id,
        payload=document_sha256.lower(),
        jws=jws,
        typ=DOCUMENT_JWS_TYPE,
    )
