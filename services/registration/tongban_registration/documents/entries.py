"""What of an uploaded document the applicant signs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tongban_registration.models import ApplicationDocument


def signed_entries(documents: Sequence[ApplicationDocument]) -> list[dict[str, Any]]:
    """What of each document the applicant signs: its identity, type, size and digest."""
    return [
        {
            "id": str(d.id),
            "filename": d.filename,
            "content_type": d.content_type,
            "size": d.size,
            "sha256": d.sha256,
        }
        for d in documents
    ]
