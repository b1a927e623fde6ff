from __future__ import annotations

import uuid

from pydantic import BaseModel, Field


class PairwiseSubjectOut(BaseModel):
    department: str = Field(description="The department's code, e.g. `tax`.")
    pseudonym: str = Field(
        description="What the department knows the person by: 32 characters of base32."
    )
    person_id: uuid.UUID = Field(description="Identity's id for the person.")
