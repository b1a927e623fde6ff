from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

Mode = Literal["kafka", "webhook", "pull"]
Status = Literal["requested", "granted", "denied", "revoked"]


class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field(description="`kafka` (the department's topic), `webhook` or `pull`.")
    url: AnyHttpUrl | None = Field(default=None, description="The webhook URL (webhook only).")

    @model_validator(mode="after")
    def _url_for_webhooks(self) -> Delivery:
        if (self.mode == "webhook") != (self.url is not None):
            raise ValueError("a webhook delivery needs a url, and only a webhook delivery")
        return self


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    dataset: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=3, max_length=500, description="Why the data is needed.")
    legal_basis: str = Field(min_length=3, max_length=500, description="The law that allows it.")
    fields: list[str] = Field(min_length=1, max_length=100, description="Top-level fields.")
    personal: bool = Field(
        default=False,
        description="Ask for personal identifiers as they are (otherwise a pairwise pseudonym).",
    )
    delivery: Delivery


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str = Field(default="", max_length=500, description="Why, for the requester.")


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    department: str
    dataset: str
    purpose: str
    legal_basis: str
    fields: list[str]
    personal_allowed: bool
    mode: Mode
    webhook_url: str | None
    status: Status
    requested_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_note: str | None
    webhook_secret: str | None = Field(
        default=None,
        description="The department's webhook signing secret (`whsec_…`), shown once: in the "
        "answer to the first webhook grant request.",
    )
