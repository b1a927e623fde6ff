from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class BusinessCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, description="Proposed registered name.")
    division_code: str = Field(
        pattern=r"^\d{6}$", description="GB/T 2260 division of the registered address."
    )


class AcknowledgementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    department: str
    reference: str
    recorded_at: datetime


class BusinessOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    uscc: str
    name: str
    division_code: str
    created_at: datetime
    acknowledgements: list[AcknowledgementOut] = []
