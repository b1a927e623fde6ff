"""Name availability: normalised comparison, reservations that lapse, and a race one name wins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tongban_registration.applications.names import name_key
from tongban_registration.testing import Flow, Tokens


@pytest.mark.parametrize(
    "variant",
    [
        "深圳市腾飞科技有限公司",
        "深圳市腾飞科技有限责任公司",
        "深圳市腾飞科技股份有限公司",
        "深圳市 腾飞科技 有限公司",
        "「深圳市腾飞科技」有限公司",
        "深圳市腾飞科技",
    ],
)
def test_names_equal_after_normalisation_have_one_key(variant: str) -> None:
    assert name_key(variant) == name_key("深圳市腾飞科技有限公司") == "深圳市腾飞科技"


def test_width_case_and_punctuation_fold_but_different_words_do_not() -> None:
    assert name_key("ＡＢＣ　Tech. Co., Ltd.") == name_key("abc tech")
    assert name_key("深圳市腾飞科技有限公司") != name_key("深圳市腾达科技有限公司")


async def test_a_name_equal_after_normalisation_is_refused_naming_the_holder(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    await flow.draft(new_application(name="深圳市鹏城数据有限公司"))
    rival = tokens.person()

    clash = await flow.client.post(
        "/v1/applications",
        json=new_application(name="深圳市　鹏城数据 有限责任公司"),
        headers=rival,
    )

    assert clash.status_code == 409
    assert clash.headers["content-type"] == "application/problem+json"
    assert clash.json()["conflicting_name"] == "深圳市鹏城数据有限公司"
    assert await sql("SELECT count(*) FROM applications") == [(1,)]


async def test_a_bare_suffix_is_not_a_name(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    response = await flow.client.post(
        "/v1/applications", json=new_application(name="有限公司"), headers=flow.applicant
    )

    assert response.status_code == 400


async def test_twenty_parallel_applications_for_one_name_exactly_one_gets_it(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    body = new_application(name="深圳市并发竞争科技有限公司")

    responses = await asyncio.gather(
        *(
            flow.client.post("/v1/applications", json=body, headers=tokens.person())
            for _ in range(20)
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, [r.text for r in responses if r.status_code >= 500]
    assert await sql("SELECT count(*) FROM name_reservations WHERE released_at IS NULL") == [(1,)]
    assert await sql("SELECT count(*) FROM applications") == [(1,)]


async def test_a_lapsed_reservation_gives_way_and_its_draft_cannot_submit_that_name(
    flow: Flow, tokens: Tokens, new_application: Callable[..., dict[str, Any]], sql: Any
) -> None:
    body = new_application(name="深圳市过期保留有限公司")
    stale = await flow.draft(body)
    await sql("UPDATE name_reservations SET expires_at = now() - interval '1 day'")
    newcomer = tokens.person()

    taken = await flow.client.post("/v1/applications", json=body, headers=newcomer)
    late = await flow.client.post(f"/v1/applications/{stale['id']}/submit", headers=flow.applicant)

    assert taken.status_code == 201, taken.text
    assert late.status_code == 409
    assert late.json()["conflicting_name"] == body["name"]


async def test_renaming_a_draft_moves_its_reservation(
    flow: Flow, new_application: Callable[..., dict[str, Any]]
) -> None:
    draft = await flow.draft(new_application(name="深圳市旧名字有限公司"))
    renamed = await flow.client.patch(
        f"/v1/applications/{draft['id']}",
        json={"name": "深圳市新名字有限公司"},
        headers=flow.applicant,
    )
    old_name_free = await flow.client.post(
        "/v1/applications",
        json=new_application(name="深圳市旧名字有限公司"),
        headers=flow.applicant,
    )

    assert renamed.status_code == 200, renamed.text
    assert old_name_free.status_code == 201
