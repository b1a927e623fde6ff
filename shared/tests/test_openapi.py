"""Every service's OpenAPI document names its refusals as RFC 9457 problems."""

from __future__ import annotations

from kit_app import KitService

from tongban_kit.errors import PROBLEM_JSON
from tongban_kit.openapi import document_problems, problem_responses

PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}


async def test_each_operation_documents_its_error_statuses_as_problem_json(
    kit_service: KitService,
) -> None:
    document = (await kit_service.client.get("/openapi.json")).json()

    create = document["paths"]["/notes"]["post"]["responses"]
    listing = document["paths"]["/notes"]["get"]["responses"]
    assert set(create) == {"201", "400", "404", "409", "413", "415", "422", "429", "503"}
    assert set(listing) == {"200", "404", "422", "429", "503"}  # a query, no body, no writes
    assert create["422"]["content"] == {PROBLEM_JSON: {"schema": PROBLEM_REF}}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["schemas"]["ProblemDetails"]["required"] == [
        "type",
        "title",
        "status",
    ]


def test_a_secured_route_documents_401_and_403_and_keeps_what_it_states() -> None:
    teapot = {"description": "stated by the route", "content": {}}
    document = {
        "paths": {
            "/mine": {
                "get": {
                    "security": [{"HTTPBearer": []}],
                    "responses": {"200": {"description": "ok"}, "404": teapot},
                }
            },
            "/open": {"get": {"responses": {"200": {"description": "ok"}}}},
        }
    }

    documented = document_problems(document)

    mine = documented["paths"]["/mine"]["get"]["responses"]
    assert {"401", "403"} <= set(mine)
    assert mine["404"] is teapot
    assert not {"401", "403"} & set(documented["paths"]["/open"]["get"]["responses"])


def test_a_route_names_refusals_the_kit_cannot_see() -> None:
    stated = problem_responses(401, 403)

    assert set(stated) == {401, 403}
    assert stated[401]["content"][PROBLEM_JSON]["schema"] == PROBLEM_REF
