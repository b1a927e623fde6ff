"""The catalogue: every event type the services publish, personal fields marked, AsyncAPI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tongban_exchange.catalogue.service import declared_event_types
from tongban_exchange.testing import BUSINESS_REGISTERED, Tokens

CATALOGUE_DIR = Path(__file__).parents[3] / "shared" / "tongban_kit" / "events" / "catalogue"
PUBLISHED = sorted(p.name.removesuffix(".json") for p in CATALOGUE_DIR.glob("*.json"))

RECORD_DATASET = {
    "name": "gov.tongban.tax.status.record.v1",
    "owner": "tax",
    "title": "Tax status",
    "schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["uscc", "status"],
        "properties": {
            "uscc": {"type": "string", "pattern": "^[0-9A-HJ-NPQRTUWXY]{18}$"},
            "status": {"enum": ["good", "arrears"]},
            "contact_resident_id": {"type": "string", "x-tongban-personal": True},
        },
    },
    "sharing": "conditional",
}


async def test_every_published_event_type_is_a_dataset_and_in_the_asyncapi_document(
    exchange: httpx.AsyncClient, as_department: Tokens
) -> None:
    datasets = (await exchange.get("/v1/datasets", headers=as_department("tax"))).json()
    document = (await exchange.get("/v1/asyncapi.json")).json()  # public: no token

    assert PUBLISHED
    assert {d["name"] for d in datasets} >= set(PUBLISHED)
    assert document["asyncapi"] == "3.0.0"
    assert set(document["components"]["messages"]) >= set(PUBLISHED)
    listed_on_channels = {
        name
        for logical, channel in document["channels"].items()
        if logical != "exchange.to.department"
        for name in channel["messages"]
    }
    assert listed_on_channels >= set(PUBLISHED)
    message = document["components"]["messages"][BUSINESS_REGISTERED]
    schema = json.loads((CATALOGUE_DIR / f"{BUSINESS_REGISTERED}.json").read_text())
    assert message["payload"] == schema
    assert document["channels"]["registration.events"]["address"].endswith(".registration.events")


async def test_the_declarative_file_is_the_owner_and_sharing_of_event_types(
    exchange: httpx.AsyncClient, as_department: Tokens
) -> None:
    declared = declared_event_types()
    business = (
        await exchange.get(f"/v1/datasets/{BUSINESS_REGISTERED}", headers=as_department("tax"))
    ).json()

    assert business["owner"] == declared[BUSINESS_REGISTERED]["owner"]
    assert (business["sharing"], business["scope"]) == ("unconditional", "national")
    assert "/legal_representative/resident_id" in business["personal"]
    assert "/investors/*/name" in business["personal"]
    login = (
        await exchange.get(
            "/v1/datasets/gov.tongban.identity.security.login_failed.v1",
            headers=as_department("tax"),
        )
    ).json()
    assert login["sharing"] == "none"


async def test_operators_add_record_datasets_and_departments_cannot(
    exchange: httpx.AsyncClient, as_department: Tokens, as_operator: dict[str, str]
) -> None:
    refused = await exchange.post("/v1/datasets", json=RECORD_DATASET, headers=as_department("tax"))
    added = await exchange.post("/v1/datasets", json=RECORD_DATASET, headers=as_operator)
    again = await exchange.post("/v1/datasets", json=RECORD_DATASET, headers=as_operator)
    broken = await exchange.post(
        "/v1/datasets",
        json={**RECORD_DATASET, "name": "gov.tongban.tax.other.record.v1", "schema": {"type": 5}},
        headers=as_operator,
    )

    assert refused.status_code == 403
    assert added.status_code == 201, added.text
    assert added.json()["personal"] == ["/contact_resident_id"]
    assert again.status_code == 409
    assert broken.status_code == 400
    assert broken.headers["content-type"] == "application/problem+json"
