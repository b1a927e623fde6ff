from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Sharing = Literal["unconditional", "conditional", "none"]
Scope = Literal["node", "national"]
#: Record datasets are named like event types, with ``record`` for the entity's verb.
RECORD_DATASET_PATTERN = r"^gov\.tongban\.[a-z0-9_]+\.[a-z0-9_]+\.record\.v[0-9]+$"
DEPARTMENT_PATTERN = r"^[a-z0-9][a-z0-9-]{1,31}$"
RECORD_DATASET = re.compile(RECORD_DATASET_PATTERN)


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(
        pattern=RECORD_DATASET_PATTERN,
        description="`gov.tongban.<department>.<entity>.record.v<N>`.",
        examples=["gov.tongban.tax.status.record.v1"],
    )
    owner: str = Field(pattern=DEPARTMENT_PATTERN, description="The owner department's code.")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    schema_: dict[str, Any] = Field(
        alias="schema", description="JSON Schema 2020-12 of one record (an object)."
    )
    sharing: Sharing
    scope: Scope = "node"


class DatasetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    name: str
    kind: Literal["event", "record"]
    owner: str
    title: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema", validation_alias="schema")
    personal: list[str] = Field(description="JSON-pointer paths of the personal fields.")
    sharing: Sharing
    scope: Scope
    updated_at: datetime
