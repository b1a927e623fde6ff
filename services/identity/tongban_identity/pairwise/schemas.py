from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tongban_identity.departments.models import CODE_PATTERN
from tongban_kit.identifiers import InvalidIdentifier, validate_resident_id


class PairwiseSubjectOut(BaseModel):
    department: str = Field(description="The department's code, e.g. `tax`.")
    pseudonym: str = Field(
        description="What the department knows the person by: 32 characters of base32."
    )
    person_id: uuid.UUID = Field(description="Identity's id for the person.")


class PairwiseDerivationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    department: str = Field(pattern=CODE_PATTERN, description="A department code, e.g. `tax`.")
    resident_id: str = Field(
        min_length=15,
        max_length=18,
        repr=False,
        description="GB 11643 resident ID number of the person (registered or not).",
    )

    @field_validator("resident_id")
    @classmethod
    def _canonical(cls, value: str) -> str:
        try:
            return validate_resident_id(value)
        except InvalidIdentifier as exc:  # its reason never quotes the number
            raise ValueError(f"not a valid resident ID number: {exc.reason}") from None


class PairwiseDerivation(BaseModel):
    department: str = Field(description="The department's code.")
    pseudonym: str = Field(description="What the department knows the person by.")


#: The most pairs one batch may ask for.
MAX_BATCH = 500


class PairwiseBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[PairwiseDerivationRequest] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} department and resident ID pairs.",
    )


class PairwiseBatchAnswer(BaseModel):
    department: str = Field(description="The department's code.")
    pseudonym: str | None = Field(
        description="What the department knows the person by; null if the department was "
        "never enrolled at this node."
    )


class PairwiseBatchDerivation(BaseModel):
    pseudonyms: list[PairwiseBatchAnswer] = Field(description="One answer per item, in order.")
