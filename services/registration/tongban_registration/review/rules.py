"""Rules an application must meet to be approved without an officer (instant approval)."""

from __future__ import annotations

from decimal import Decimal

from tongban_registration.applications.entity_types import EntityType
from tongban_registration.models import Application

#: Entity types owned by exactly one natural person.
_ONE_PERSON = (EntityType.INDIVIDUAL_BUSINESS, EntityType.SOLE_PROPRIETORSHIP)


def problems_of(application: Application) -> list[dict[str, str]]:
    """What keeps an application from being rule-complete; empty when it is."""
    problems: list[dict[str, str]] = []
    kind = EntityType(application.entity_type)
    investors = application.investors
    if kind in _ONE_PERSON and (len(investors) != 1 or investors[0]["kind"] != "natural_person"):
        problems.append({"field": "investors", "problem": "must be exactly one natural person"})
    if kind is EntityType.PARTNERSHIP and len(investors) < 2:
        problems.append(
            {"field": "investors", "problem": "a partnership needs two or more partners"}
        )
    if kind is EntityType.FARMERS_COOPERATIVE and len(investors) < 5:
        problems.append(
            {"field": "investors", "problem": "a cooperative needs five or more members"}
        )
    if sum((Decimal(i["share"]) for i in investors), Decimal(0)) != Decimal(100):
        problems.append({"field": "investors", "problem": "shares must sum to exactly 100"})
    if len(application.business_scope.strip()) < 2:
        problems.append({"field": "business_scope", "problem": "describe the business scope"})
    return problems
