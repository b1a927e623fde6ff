from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from tongban_identity.signatures import assurance, document_keys, documents, person_keys
from tongban_identity.signatures.schemas import (
    AssuranceOut,
    ChallengeOut,
    DocumentJwk,
    DocumentJwkSet,
    HighAssuranceRequest,
    PersonKeyCreate,
    PersonKeyList,
    PersonKeyOut,
    PersonVerifyOut,
    PersonVerifyRequest,
    SignatureOut,
    SignatureRequest,
    SubstantialAssuranceRequest,
    VerifyOut,
    VerifyRequest,
)
from tongban_kit.auth import AccessClaims, AssuranceLevel, require
from tongban_kit.db import SessionDep
from tongban_kit.errors import Forbidden

router = APIRouter()

SIGN_SCOPE = "identity:sign"
VERIFY_SCOPE = "identity:verify"
ASSURANCE_SCOPE = "identity:assurance"
#: Verifiers may keep the document key set this long; an unknown kid is worth a refetch.
DOCUMENT_JWKS_MAX_AGE_S = 300

Signer = Annotated[AccessClaims, Depends(require(SIGN_SCOPE))]
Verifier = Annotated[AccessClaims, Depends(require(VERIFY_SCOPE))]
Confirmer = Annotated[AccessClaims, Depends(require(ASSURANCE_SCOPE))]


@dataclass(frozen=True)
class SignedInPerson:
    id: uuid.UUID
    acr: AssuranceLevel


async def _signed_in_person(
    claims: Annotated[AccessClaims, Depends(require())],
) -> SignedInPerson:
    """The person a token speaks for; a client's token (no sign-in, no ``acr``) is refused."""
    try:
        person_id = uuid.UUID(claims.sub)
    except ValueError:
        person_id = None
    if claims.acr is None or person_id is None:
        raise Forbidden("this request needs a person's own access token, not a client's")
    return SignedInPerson(person_id, claims.acr)


Me = Annotated[SignedInPerson, Depends(_signed_in_person)]


# --- the node's document signatures -------------------------------------------------------


@router.post(
    "/v1/internal/signatures", status_code=201, response_model=SignatureOut, tags=["signatures"]
)
async def sign_document(
    body: SignatureRequest, caller: Signer, session: SessionDep, request: Request
) -> SignatureOut:
    """Sign a document's SHA-256 with the node's document key (a detached JWS, RFC 7797).

    Access: services and departments holding the scope `identity:sign`. The JWS header is
    `{"alg":"ES256","b64":false,"crit":["b64"],"kid":"doc-…","typ":"tongban-document+jws"}`
    and the signing input is `BASE64URL(header) + "." + document_sha256` (64 lowercase hex
    digits). Anyone verifies it offline with `/.well-known/document-jwks.json`. The node
    records the signature with its type, metadata and caller.
    """
    signature = await documents.sign_document(
        session,
        vault=request.app.state.document_key_vault,
        document_sha256=body.document_sha256,
        document_type=body.document_type,
        metadata=body.metadata,
        caller=caller.sub,
    )
    return SignatureOut(
        id=signature.id,
        document_sha256=signature.document_sha256,
        document_type=signature.document_type,
        kid=signature.kid,
        jws=signature.jws,
        signed_at=signature.signed_at,
    )


@router.post("/v1/signatures/verify", response_model=VerifyOut, tags=["signatures"])
async def verify_document(body: VerifyRequest, session: SessionDep) -> VerifyOut:
    """Whether a JWS is this node's signature of the document with this SHA-256.

    Access: public, for those without a JOSE library; the same check runs offline against
    `/.well-known/document-jwks.json`. Answers 200 with `valid: false` and a `reason` for a
    JWS that is not the node's signature of exactly this digest.
    """
    result = await documents.verify_document(
        session, document_sha256=body.document_sha256, jws=body.jws
    )
    return VerifyOut(
        valid=result.valid, kid=result.kid, signed_at=result.signed_at, reason=result.reason
    )


@router.get("/.well-known/document-jwks.json", response_model=DocumentJwkSet, tags=["signatures"])
async def document_jwks(session: SessionDep, response: Response) -> DocumentJwkSet:
    """The node's public document-signing keys (RFC 7517): the active one and every retired one.

    Access: public. Kept apart from the token keys (`/.well-known/jwks.json`) so that no
    token verifier ever holds a document key. Keys are never withdrawn: a copy fetched later
    holds every key of an earlier one. Cacheable for five minutes.
    """
    keys = await document_keys.published_document_keys(session)
    response.headers["Cache-Control"] = f"public, max-age={DOCUMENT_JWKS_MAX_AGE_S}"
    return DocumentJwkSet(keys=[DocumentJwk.model_validate(key) for key in keys])


@router.post("/v1/signatures/verify-person", response_model=PersonVerifyOut, tags=["signatures"])
async def verify_person_signature(
    body: PersonVerifyRequest, caller: Verifier, session: SessionDep
) -> PersonVerifyOut:
    """Whether a person signed the document with this SHA-256 with one of their live keys.

    Access: services holding the scope `identity:verify` (registration checking a signed
    submission). The JWS is detached with `"b64": false`, `"typ": "tongban-document+jws"`,
    `kid` the key's thumbprint. Answers 200 with `valid: false` and a `reason` otherwise
    (revoked key, wrong algorithm, another digest, unknown key).
    """
    try:
        key = await person_keys.verify_person_signature(
            session, person_id=body.person_id, document_sha256=body.document_sha256, jws=body.jws
        )
    except person_keys.InvalidSignature as exc:
        return PersonVerifyOut(valid=False, reason=exc.detail)
    return PersonVerifyOut(valid=True, key_id=key.id, kid=key.thumbprint)


# --- persons' keys ------------------------------------------------------------------------


@router.post("/v1/me/keys", status_code=201, response_model=PersonKeyOut, tags=["person keys"])
async def register_key(body: PersonKeyCreate, me: Me, session: SessionDep) -> PersonKeyOut:
    """Register a public key to sign with: EC P-256 (ES256) or Ed25519 (EdDSA).

    Access: the signed-in person (a person's access token). The key's RFC 7638 thumbprint
    becomes its `kid`; a key is registered once (409 after, even revoked). At most ten live
    keys. A key registered by a sign-in at `substantial` or above can later prove the person
    for level `high`.
    """
    key = await person_keys.register_key(session, person_id=me.id, jwk=body.jwk, acr=me.acr)
    return PersonKeyOut.model_validate(key)


@router.get("/v1/me/keys", response_model=PersonKeyList, tags=["person keys"])
async def list_keys(me: Me, session: SessionDep) -> PersonKeyList:
    """The signed-in person's keys, revoked ones included (with `revoked_at`).

    Access: the signed-in person.
    """
    keys = await person_keys.list_keys(session, person_id=me.id)
    return PersonKeyList(keys=[PersonKeyOut.model_validate(key) for key in keys])


@router.delete("/v1/me/keys/{key_id}", status_code=204, tags=["person keys"])
async def revoke_key(key_id: uuid.UUID, me: Me, session: SessionDep) -> Response:
    """Revoke one of the signed-in person's keys: signatures it makes are refused from now.

    Access: the signed-in person; another person's key is not found (404).
    """
    await person_keys.revoke_key(session, person_id=me.id, key_id=key_id)
    return Response(status_code=204)


# --- levels of assurance ------------------------------------------------------------------


@router.post(
    "/v1/me/assurance/challenge", status_code=201, response_model=ChallengeOut, tags=["assurance"]
)
async def assurance_challenge(me: Me, session: SessionDep) -> ChallengeOut:
    """A one-time challenge to sign with a registered key, good for two minutes.

    Access: the signed-in person.
    """
    challenge = await assurance.new_challenge(session, person_id=me.id)
    return ChallengeOut(
        challenge_id=challenge.id, challenge=challenge.challenge, expires_at=challenge.expires_at
    )


@router.post("/v1/me/assurance/high", response_model=AssuranceOut, tags=["assurance"])
async def raise_to_high(
    body: HighAssuranceRequest, me: Me, session: SessionDep, request: Request
) -> AssuranceOut:
    """Raise the signed-in person to level `high` by signing a challenge with a registered key.

    Access: the signed-in person, already at `substantial`, with a key registered by a sign-in
    at `substantial` or above. The JWS is detached with `"b64": false`,
    `"typ": "tongban-challenge+jws"`, `kid` the key's thumbprint, over the challenge string.
    A challenge serves once (409 after) and for two minutes. Emits
    `gov.tongban.identity.person.assurance_raised.v1`; the new level shows in the next sign-in.
    """
    result = await assurance.raise_to_high(
        session,
        person_id=me.id,
        challenge_id=body.challenge_id,
        jws=body.jws,
        node=request.app.state.settings.node.node_code,
    )
    return AssuranceOut(
        person_id=result.person_id,
        loa=result.loa,
        previous_loa=result.previous_loa,
        raised=result.raised,
    )


@router.post(
    "/v1/persons/{person_id}/assurance/substantial",
    response_model=AssuranceOut,
    tags=["assurance"],
)
async def raise_to_substantial(
    person_id: uuid.UUID,
    body: SubstantialAssuranceRequest,
    caller: Confirmer,
    session: SessionDep,
    request: Request,
) -> AssuranceOut:
    """Raise a person to level `substantial`: confirmed against an authoritative record.

    Access: departments or officers holding the scope `identity:assurance`, having checked
    the person against `source`. A person at `substantial` or `high` stays there
    (`raised: false`). Emits `gov.tongban.identity.person.assurance_raised.v1` naming the
    caller (`confirmed_by`).
    """
    result = await assurance.raise_to_substantial(
        session,
        person_id=person_id,
        source=body.source,
        confirmed_by=caller.sub,
        node=request.app.state.settings.node.node_code,
    )
    return AssuranceOut(
        person_id=result.person_id,
        loa=result.loa,
        previous_loa=result.previous_loa,
        raised=result.raised,
    )
