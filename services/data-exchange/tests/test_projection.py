"""Projections: only the granted fields; personal identifiers become the department's pairwise
pseudonym unless the grant allows them. The pseudonym source here stands in for identity's
`POST /v1/pairwise/subjects` (the routing code reaches it through the same interface)."""

from __future__ import annotations

import hashlib

from tongban_exchange.models import Grant
from tongban_exchange.routing.projection import needed_pseudonyms, project

DATA = {
    "uscc": "91440305000000019K",
    "name": "深圳市腾飞科技有限公司",
    "legal_representative": {"name": "张三", "resident_id": "11010519491231002X"},
    "investors": [
        {"name": "李四", "kind": "natural_person", "share": "60"},
        {"name": "深圳市投资有限公司", "kind": "legal_person", "share": "40"},
    ],
}
PERSONAL = ["/legal_representative/resident_id", "/investors/*/name"]


class Pairwise:
    """Per-department pseudonyms, as identity derives them (keyed by department)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def pseudonym(self, department: str, resident_id: str) -> str | None:
        self.asked.append((department, resident_id))
        return hashlib.sha256(f"{department}|{resident_id}".encode()).hexdigest()[:32]

    async def prefetch(self, pairs: set[tuple[str, str]]) -> None:
        """Nothing to get ready: every answer is made on the spot."""


def _grant(department: str, fields: list[str], *, personal: bool = False) -> Grant:
    return Grant(department=department, fields=fields, personal_allowed=personal)


async def test_each_department_sees_its_own_pseudonym() -> None:
    pairwise = Pairwise()

    tax = await project(
        DATA, grant=_grant("tax", ["legal_representative"]), personal=PERSONAL, pseudonyms=pairwise
    )
    social = await project(
        DATA,
        grant=_grant("social-security", ["legal_representative"]),
        personal=PERSONAL,
        pseudonyms=pairwise,
    )

    tax_id = tax["legal_representative"]["resident_id"]
    social_id = social["legal_representative"]["resident_id"]
    assert tax_id != social_id
    assert "11010519491231002X" not in (tax_id, social_id)
    assert tax["legal_representative"]["name"] == "张三"
    assert DATA["legal_representative"]["resident_id"] == "11010519491231002X"  # not mutated


async def test_a_grant_that_allows_personal_data_and_one_without_the_field() -> None:
    pairwise = Pairwise()

    allowed = await project(
        DATA,
        grant=_grant("police", ["legal_representative"], personal=True),
        personal=PERSONAL,
        pseudonyms=pairwise,
    )
    narrow = await project(
        DATA, grant=_grant("statistics", ["uscc"]), personal=PERSONAL, pseudonyms=pairwise
    )

    assert allowed["legal_representative"]["resident_id"] == "11010519491231002X"
    assert narrow == {"uscc": "91440305000000019K"}
    assert pairwise.asked == []  # nobody asked identity for what is not sent


class NamesUnknown(Pairwise):
    """Identity makes pseudonyms of resident IDs only; any other value is withheld."""

    async def pseudonym(self, department: str, resident_id: str) -> str | None:
        if len(resident_id) != 18:
            return None
        return await super().pseudonym(department, resident_id)


async def test_personal_values_inside_arrays_are_pseudonymised_or_withheld() -> None:
    view = await project(
        DATA,
        grant=_grant("tax", ["investors", "legal_representative"]),
        personal=PERSONAL,
        pseudonyms=NamesUnknown(),
    )

    assert ["name" in i for i in view["investors"]] == [False, False]
    assert [i["share"] for i in view["investors"]] == ["60", "40"]
    assert [i["name"] for i in DATA["investors"]] == ["李四", "深圳市投资有限公司"]  # not mutated
    assert len(view["legal_representative"]["resident_id"]) == 32


async def test_the_pairs_to_prefetch_are_the_ones_projecting_asks_for() -> None:
    pairwise = Pairwise()
    grants = [
        _grant("tax", ["investors", "legal_representative"]),
        _grant("social-security", ["legal_representative", "uscc"]),
        _grant("police", ["legal_representative", "investors"], personal=True),
        _grant("statistics", ["investors", "name"]),
    ]

    needed = needed_pseudonyms(DATA, grants=grants, personal=PERSONAL)
    for grant in grants:
        await project(DATA, grant=grant, personal=PERSONAL, pseudonyms=pairwise)

    assert needed == set(pairwise.asked)
    assert needed == {
        ("tax", "11010519491231002X"),
        ("tax", "李四"),
        ("tax", "深圳市投资有限公司"),
        ("social-security", "11010519491231002X"),
        ("statistics", "李四"),
        ("statistics", "深圳市投资有限公司"),
    }
