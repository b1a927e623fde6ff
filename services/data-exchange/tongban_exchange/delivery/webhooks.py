"""Standard Webhooks: a per-department ``whsec_`` secret and the ``v1`` HMAC-SHA256 signature.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; ``webhook-id`` is the
CloudEvent id, the same in every delivery mode and on every retry, so receivers deduplicate
on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tongban_exchange.models import WebhookSecret
from tongban_kit.crypto import FieldCipher

PREFIX = "whsec_"


def _context(department: str) -> str:
    return f"webhook_secrets/{department}"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


async def ensure_secret(
    session: AsyncSession, *, department: str, cipher: FieldCipher
) -> str | None:
    """Make the department's secret if it has none; return it only when it was made."""
    secret = new_secret()
    made = await session.execute(
        insert(WebhookSecret)
        .values(department=department, sealed=cipher.encrypt(secret, context=_context(department)))
        .on_conflict_do_nothing()
        .returning(WebhookSecret.department)
    )
    return secret if made.first() is not None else None


async def secret_of(session: AsyncSession, *, department: str, cipher: FieldCipher) -> str:
    row = await session.get(WebhookSecret, department)
    if row is None:
        raise LookupError(f"department {department} has no webhook secret")
    return cipher.decrypt(row.sealed, context=_context(department))


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, *, msg_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id=msg_id, timestamp=timestamp, body=body),
    }
