"""The node signs documents and says whether a document signature is its own.

What the node signs for a document: its SHA-256, written as 64 lowercase hex digits, as the
unencoded payload of a detached JWS (see ``signatures.jws``) with the protected header::

    {"alg":"ES256","b64":false,"crit":["b64"],"kid":"doc-…","typ":"tongban-document+jws"}

The document itself carries what it says (the licence, its holder, its dates); the signature
binds exactly its bytes. Who asked for the signature, for which type of document, with what
metadata and when is recorded by the node (``document_signatures``), not signed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tongban_identity.keys.sealing import KeyVault
from tongban_identity.signatures import document_keys, repository
from tongban_identity.signatures.jws import (
    JwsError,
    load_public_key,
    parse_unencoded,
    sign_es256,
    verify_signature,
)
from tongban_identity.signatures.models import DocumentSignature

DOCUMENT_JWS_TYPE = "tongban-document+jws"


@dataclass(frozen=True)
class DocumentVerification:
    valid: bool
    kid: str | None
    signed_at: datetime | None = None
    signature_id: uuid.UUID | None = None
    reason: str | None = None


async def sign_document(
    session: AsyncSession,
    *,
    vault: KeyVault,
    document_sha256: str,
    document_type: str,
    metadata: dict[str, Any],
    caller: str,
) -> DocumentSignature:
    """Sign ``document_sha256`` (64 lowercase hex digits) with the active document key, and
    record the signature."""
    key = await document_keys.signing_key(session, vault=vault)
    jws = sign_es256(key.private_key, {"kid": key.kid, "typ": DOCUMENT_JWS_TYPE}, document_sha256)
    return await repository.add_signature(
        session,
        DocumentSignature(
            id=uuid.uuid4(),
            document_sha256=document_sha256,
            document_type=document_type,
            kid=key.kid,
            jws=jws,
            document_metadata=metadata,
            caller=caller,
            signed_at=datetime.now(UTC),
        ),
    )


async def verify_document(
    session: AsyncSession, *, document_sha256: str, jws: str
) -> DocumentVerification:
    """Whether ``jws`` is this node's signature of the document with ``document_sha256``.

    Valid only if it is a detached ES256 JWS with ``b64: false`` made by one of the node's
    document keys (active or retired) over exactly that digest. ``signed_at`` comes from the
    node's record of the signature.
    """
    try:
        parsed = parse_unencoded(jws, payload=document_sha256)
    except JwsError as exc:
        return DocumentVerification(valid=False, kid=None, reason=str(exc))
    kid = parsed.kid
    if parsed.alg != document_keys.ALGORITHM:
        return DocumentVerification(valid=False, kid=kid, reason="the algorithm is not ES256")
    if parsed.typ != DOCUMENT_JWS_TYPE:
        return DocumentVerification(
            valid=False, kid=kid, reason=f"the JWS type is not {DOCUMENT_JWS_TYPE}"
        )
    key = (
        await repository.get_document_key(session, kid)
        if kid and kid.startswith(document_keys.KID_PREFIX)
        else None
    )
    if kid is None or key is None:
        return DocumentVerification(
            valid=False, kid=kid, reason="not signed with a document key of this node"
        )
    if not verify_signature(load_public_key(key.public_jwk), document_keys.ALGORITHM, parsed):
        return DocumentVerification(
            valid=False, kid=kid, reason="the signature does not match this document digest"
        )
    signature_part = jws.rsplit(".", 1)[1]
    records = await repository.find_signatures(session, document_sha256=document_sha256, kid=kid)
    record = next((r for r in records if r.jws.rsplit(".", 1)[1] == signature_part), None)
    return DocumentVerification(
        valid=True,
        kid=kid,
        signed_at=record.signed_at if record else None,
        signature_id=record.id if record else None,
    )
