from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    filename: str
    content_type: str = Field(
        description="`application/pdf`, `image/png` or `image/jpeg`, told by the file's content."
    )
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="SHA-256 of the file (hex); part of what the applicant signs.")
    created_at: datetime


class DocumentList(BaseModel):
    items: list[DocumentOut]
