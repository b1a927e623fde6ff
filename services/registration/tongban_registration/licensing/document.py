"""An accreditation licence as a signed document: the same canonical JSON, node signature
and QR payload shape as the business licence (``licences/document.py``), another type."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from tongban_registration.licensing.types import LicenceType

DOCUMENT_TYPE = "accreditation-licence"
KIND = "tongban-accreditation-licence"


def accreditation_document(
    *,
    licence_id: str,
    number: str,
    licence_type: LicenceType,
    uscc: str,
    holder: str,
    valid_from: date,
    valid_until: date,
    node: str,
    issued_at: datetime,
) -> dict[str, Any]:
    """What the licence states (a renewal signs a new document with the new validity)."""
    return {
        "type": KIND,
        "v": 1,
        "licence_id": licence_id,
        "licence_number": number,
        "licence_type": licence_type.code,
        "licence_name": licence_type.name,
        "uscc": uscc,
        "holder": holder,
        "valid_from": valid_from.isoformat(),
        "valid_until": valid_until.isoformat(),
        "issuer": f"/nodes/{node}/registration",
        "issued_at": issued_at.isoformat(),
    }
