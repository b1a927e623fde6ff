"""Licence types (证照分离): what a node licenses, and what each licence presupposes.

A node configures its types in ``TONGBAN_REGISTRATION_LICENCE_TYPES`` (a JSON list). Each
names the activity its holder's business scope must cover, the other licences the business
must hold, and records other departments keep (read through data-exchange) that must say so.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DepartmentCheck(BaseModel):
    """A record of another department, by the business's USCC, that must hold ``equals``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(min_length=1, max_length=200, description="Record dataset name.")
    field: str = Field(min_length=1, max_length=100, description="Top-level field checked.")
    equals: Any = Field(description="The value the field must have.")
    description: str = Field(min_length=1, max_length=300, description="What it means.")


class LicenceType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9-]{1,39}$", description="e.g. `food-operation`.")
    name: str = Field(min_length=1, max_length=100, description="e.g. 食品经营许可证.")
    number_prefix: str = Field(
        pattern=r"^[A-Z]{1,4}$", description="Licence numbers start with it (e.g. `JY`)."
    )
    scope_covers: list[str] = Field(
        default_factory=list,
        description="Activities the business scope must mention, each one (e.g. 食品销售).",
    )
    requires_licences: list[str] = Field(
        default_factory=list, description="Codes of licence types the business must hold."
    )
    department_checks: list[DepartmentCheck] = Field(default_factory=list)
    validity_days: int = Field(default=1825, ge=1, le=36500, description="Validity (days).")
    instant_approval: bool = Field(
        default=False, description="Issued at application when every prerequisite is met."
    )
