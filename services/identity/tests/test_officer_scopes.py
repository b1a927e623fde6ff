"""Officer scopes: operators grant a person scopes (roles) through the admin API or the
`tongban persons` command; the person's sign-in tokens carry them beside login_scope from the
next login or refresh, lose them at the next refresh after a revocation, and every change is
audited. Operator scopes are never granted; bad input changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tongban_identity.sessions.testing import SignInDriver, resident_id, running_identity
from tongban_identity.signatures.testing import mint_token
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import EventProbe, assert_valid_event

OFFICER = resident_id(2)
REVIEW = "registration:review"
ASSURANCE = "identity:assurance"
PROBLEM = "application/problem+json"
TONGBAN = Path(sys.executable).with_name("tongban")


@pytest.fixture
async def database(make_database) -> str:  # type: ignore[no-untyped-def]
    url: str = await make_database("tongban_identity:migrations")
    return url


@pytest.fixture
async def identity(database: str, node_settings: NodeSettings) -> AsyncIterator[SignInDriver]:
    async with running_identity(database, node_settings, run_workers=False) as driver:
        yield driver


async def operator(identity: SignInDriver, *scopes: str) -> dict[str, str]:
    token = await mint_token(identity.app, *(scopes or ("tongban:admin",)), subject="ops-1")
    return {"Authorization": f"Bearer {token}"}


async def change(
    identity: SignInDriver, person_id: str, scopes: list[str], *, revoke: bool = False
) -> dict[str, object]:
    path = f"/v1/admin/persons/{person_id}/scopes" + ("/revoke" if revoke else "")
    response = await identity.client.post(
        path, json={"scopes": scopes}, headers=await operator(identity)
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def token_scopes(identity: SignInDriver, access_token: str) -> set[str]:
    return set((await identity.verify(access_token)).scopes)


async def test_granted_scopes_join_login_scope_and_a_revocation_counts_at_the_next_refresh(
    identity: SignInDriver,
) -> None:
    person_id = await identity.sign_up(OFFICER)
    login_scope = set(identity.settings.login_scope.split())
    before = await identity.tokens(OFFICER)

    granted = await change(identity, person_id, [REVIEW, ASSURANCE])
    refreshed = (await identity.refresh(before["refresh_token"])).json()
    fresh_login = await identity.tokens(OFFICER)

    assert granted == {"person_id": person_id, "scopes": sorted([REVIEW, ASSURANCE])}
    assert await token_scopes(identity, before["access_token"]) == login_scope
    assert await token_scopes(identity, refreshed["access_token"]) == login_scope | {
        REVIEW,
        ASSURANCE,
    }
    assert set(refreshed["scope"].split()) == login_scope | {REVIEW, ASSURANCE}
    assert await token_scopes(identity, fresh_login["access_token"]) == login_scope | {
        REVIEW,
        ASSURANCE,
    }
    narrowed = (await identity.refresh(refreshed["refresh_token"], scope=REVIEW)).json()
    assert narrowed["scope"] == REVIEW

    remaining = await change(identity, person_id, [REVIEW], revoke=True)
    after = (await identity.refresh(fresh_login["refresh_token"])).json()

    assert remaining["scopes"] == [ASSURANCE]
    assert await token_scopes(identity, after["access_token"]) == login_scope | {ASSURANCE}
    refused = await identity.refresh(after["refresh_token"], scope=REVIEW)
    assert refused.json()["error"] == "invalid_scope"
    rows = await identity.sql(
        "SELECT type, actor, detail FROM audit_events WHERE type LIKE 'scopes_%' ORDER BY at"
    )
    assert rows == [
        ("scopes_granted", "operator:ops-1", {"scopes": sorted([REVIEW, ASSURANCE])}),
        ("scopes_revoked", "operator:ops-1", {"scopes": [REVIEW]}),
    ]


async def test_repeating_a_grant_or_revoking_what_is_not_held_changes_nothing(
    identity: SignInDriver,
) -> None:
    person_id = await identity.sign_up(OFFICER)
    await change(identity, person_id, [REVIEW])
    audit_rows = await identity.count("audit_events")

    again = await change(identity, person_id, [REVIEW])
    not_held = await change(identity, person_id, [ASSURANCE], revoke=True)

    assert again["scopes"] == not_held["scopes"] == [REVIEW]
    assert await identity.count("audit_events") == audit_rows


async def test_only_operators_change_scopes_and_bad_input_changes_nothing(
    identity: SignInDriver,
) -> None:
    person_id = await identity.sign_up(OFFICER)
    person_token = (await identity.tokens(OFFICER))["access_token"]
    path = f"/v1/admin/persons/{person_id}/scopes"
    ops = await operator(identity)
    audit_rows = await identity.count("audit_events")

    refusals = {
        "no token": await identity.client.post(path, json={"scopes": [REVIEW]}),
        "a person": await identity.client.post(
            path, json={"scopes": [REVIEW]}, headers={"Authorization": f"Bearer {person_token}"}
        ),
        "operator scope": await identity.client.post(
            path, json={"scopes": ["tongban:admin"]}, headers=ops
        ),
        "spaces": await identity.client.post(path, json={"scopes": ["a b"]}, headers=ops),
        "empty": await identity.client.post(path, json={"scopes": []}, headers=ops),
        "extra": await identity.client.post(
            path, json={"scopes": [REVIEW], "person": "x"}, headers=ops
        ),
        "malformed": await identity.client.post(
            path, content=b"{", headers={**ops, "content-type": "application/json"}
        ),
        "unknown person": await identity.client.post(
            "/v1/admin/persons/6f1c1e57-5f6b-4a43-9b11-111111111111/scopes",
            json={"scopes": [REVIEW]},
            headers=ops,
        ),
    }

    expected = {"no token": 401, "a person": 403, "unknown person": 404, "malformed": 400}
    for name, response in refusals.items():
        assert response.status_code == expected.get(name, 422), name
        assert response.headers["content-type"] == PROBLEM, name
    assert await identity.count("person_scopes") == 0
    assert await identity.count("audit_events") == audit_rows
    listed = await identity.client.get(path, headers=ops)
    assert listed.json() == {"person_id": person_id, "scopes": []}


def tongban(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TONGBAN_IDENTITY_DATABASE_URL": database}
    return subprocess.run(
        [str(TONGBAN), "persons", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_command_line_grants_and_revokes_by_resident_id_and_the_change_is_published(
    database: str, node_settings: NodeSettings
) -> None:
    async with running_identity(database, node_settings) as identity:
        person_id = await identity.sign_up(OFFICER)

        granted = tongban(database, "grant-scopes", OFFICER, REVIEW, ASSURANCE)
        revoked = tongban(database, "revoke-scopes", person_id, ASSURANCE)
        listed = tongban(database, "scopes", OFFICER)
        operator_scope = tongban(database, "grant-scopes", OFFICER, "tongban:admin")
        nobody = tongban(database, "grant-scopes", resident_id(9), REVIEW)

        assert granted.returncode == 0, granted.stderr
        assert granted.stdout.split() == [person_id, ASSURANCE, REVIEW]
        assert revoked.stdout.split() == [person_id, REVIEW]
        assert listed.stdout.split() == [person_id, REVIEW]
        assert OFFICER not in granted.stdout + granted.stderr
        for refused in (operator_scope, nobody):
            assert refused.returncode != 0
            assert "refused" in refused.stderr
        tokens = await identity.tokens(OFFICER)
        assert REVIEW in tokens["scope"].split()

        async with EventProbe(node_settings, "identity.events") as probe:
            events = await probe.collect(lambda seen: {e.type for e in seen} >= {GRANTED, REVOKED})
    changes = [e for e in events if e.type in (GRANTED, REVOKED)]
    assert len(changes) == 2
    for event in changes:
        assert_valid_event(event)
        assert event.data["actor"] == "command-line"
        assert OFFICER not in event.to_kafka().value.decode()


GRANTED = "gov.tongban.identity.security.scopes_granted.v1"
REVOKED = "gov.tongban.identity.security.scopes_revoked.v1"
