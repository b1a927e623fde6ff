"""Officers' queue, instant approval, and the statutory clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import httpx
import pytest

from tongban_kit.testing import running_app
from tongban_registration.main import create_app
from tongban_registration.review.clock import add_working_days
from tongban_registration.settings import RegistrationSettings
from tongban_registration.testing import Flow


def test_working_days_skip_weekends_and_holidays() -> None:
    thursday = date(2026, 9, 24)

    assert add_working_days(thursday, 3) == date(2026, 9, 29)  # Fri, Mon, Tue
    assert add_working_days(date(2026, 9, 30), 3, {date(2026, 10, d) for d in range(1, 8)}) == date(
        2026, 10, 12
    )


async def test_the_queue_shows_submitted_applications_with_their_promised_date(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application())
    still_draft = await flow.draft(new_application())
    submitted = await flow.submit(draft["id"])

    queue = (await flow.client.get("/v1/review/applications", headers=flow.officer)).json()

    assert [a["id"] for a in queue["items"]] == [draft["id"]]
    assert still_draft["id"] not in str(queue)
    assert queue["items"][0]["due_on"] == submitted["due_on"]
    assert queue["items"][0]["allowed_actions"] == ["claim"]
    assert queue["items"][0]["legal_representative"]["resident_id_masked"] == "110105********002X"


async def test_overdue_applications_are_listed_and_counted_in_metrics(
    flow: Flow, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    late = await flow.draft(new_application())
    on_time = await flow.draft(new_application())
    await flow.submit(late["id"])
    await flow.submit(on_time["id"])
    await sql("UPDATE applications SET due_on = DATE '2026-01-05' WHERE id = :id", id=late["id"])

    overdue = await flow.client.get("/v1/review/overdue", headers=flow.officer)
    metrics = await flow.client.get("/metrics")

    assert [a["id"] for a in overdue.json()["items"]] == [late["id"]]
    assert "tongban_registration_overdue_applications 1.0" in metrics.text


@pytest.fixture
async def instant_client(
    registration_settings: RegistrationSettings,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = registration_settings.model_copy(
        update={"auto_approve_entity_types": ["individual_business"]}
    )
    async with running_app(create_app(settings)) as client:
        yield client


async def test_configured_entity_types_that_meet_every_rule_are_approved_at_submission(
    instant_client: httpx.AsyncClient,
    applicant: dict[str, str],
    officer: dict[str, str],
    new_application: Callable[..., dict[str, Any]],
) -> None:
    flow = Flow(instant_client, applicant, officer)
    one_person = [{"name": "王五", "kind": "natural_person", "share": "100"}]
    shop = await flow.draft(
        new_application(entity_type="individual_business", investors=one_person)
    )
    two_owners = await flow.draft(new_application(entity_type="individual_business"))
    company = await flow.draft(new_application(investors=one_person))

    instant = await flow.submit(shop["id"])
    broken_rule = await flow.submit(two_owners["id"])
    not_configured = await flow.submit(company["id"])

    assert instant["status"] == "approved"
    assert instant["uscc"][:2] == "92"  # market regulation, individual business
    assert [h["actor_role"] for h in instant["history"]][-2:] == ["system", "system"]
    assert broken_rule["status"] == "submitted"
    assert not_configured["status"] == "submitted"


def test_unknown_entity_types_in_the_instant_setting_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown entity types"):
        RegistrationSettings(auto_approve_entity_types=["bank"])


def test_production_needs_real_pii_keys() -> None:
    from tongban_kit.settings import NodeSettings

    with pytest.raises(ValueError, match="PII_KEYS"):
        RegistrationSettings(node=NodeSettings(environment="production"))
