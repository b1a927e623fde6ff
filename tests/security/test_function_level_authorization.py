"""Function-level authorization: the licensing officers' routes (deciding a licence
application; suspending, reinstating and revoking a licence; the queue) called with valid
tokens that lack ``registration:licensing``: the applicant herself, another person, a
registration reviewer and a data-exchange department.

Each is refused with 403 problem+json, and nothing is written: the application still waits,
the licence keeps its status.
"""

from __future__ import annotations

from typing import Any

import pytest
from security_world import World, assert_problem, sample

pytestmark = pytest.mark.node

CALLERS = ["bob", "samr", "alice", "tax"]


def _headers(world: World, caller: str) -> dict[str, str]:
    if caller in ("alice", "bob"):
        return world.headers(getattr(world, caller))
    return dict(getattr(world, caller).headers)


@pytest.mark.parametrize("caller", sample(CALLERS))
def test_deciding_and_suspending_or_revoking_need_the_licensing_scope(
    world: World,
    pending_licence: dict[str, Any],
    issued_licence: dict[str, Any],
    caller: str,
) -> None:
    headers = _headers(world, caller)
    decision = f"/registration/v1/licensing/applications/{pending_licence['id']}/decision"
    licence = f"/registration/v1/licensing/licences/{issued_licence['licence_number']}"
    alice = world.headers(world.alice)
    status = world.api.get(
        f"/registration/v1/licences/{issued_licence['licence_number']}", headers=alice
    ).json()["status"]
    before = world.writes.snapshot()

    answers = [
        world.api.post(decision, json={"decision": "approve"}, headers=headers),
        world.api.post(decision, json={"decision": "reject", "reason": "不符合"}, headers=headers),
        world.api.post(f"{licence}/suspend", json={"reason": "检查"}, headers=headers),
        world.api.post(f"{licence}/reinstate", json={"reason": "整改"}, headers=headers),
        world.api.post(f"{licence}/revoke", json={"reason": "吊销"}, headers=headers),
        world.api.get("/registration/v1/licensing/applications", headers=headers),
    ]

    for answer in answers:
        assert_problem(answer, 403)
        assert "爱丽丝" not in answer.text
    assert world.writes.snapshot() == before
    waiting = world.api.get(
        f"/registration/v1/licence-applications/{pending_licence['id']}", headers=alice
    ).json()
    assert waiting["status"] == "submitted"
    now = world.api.get(
        f"/registration/v1/licences/{issued_licence['licence_number']}", headers=alice
    ).json()
    assert now["status"] == status
