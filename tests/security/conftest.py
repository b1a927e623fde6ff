"""Fixtures of the security suite: one node for all of it, its callers and a registered
business (``security_world`` holds the helpers the tests import)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from security_world import (
    DATA_SCOPES,
    INSTANT,
    LICENCE_TYPES,
    PDF,
    WAITS,
    World,
    Writes,
    resident_id,
)

from tongban_kit.testing.callers import Department, department, sign_up
from tongban_kit.testing.node import NodeProcess, node_process
from tongban_registration.testing import application


@pytest.fixture(scope="package")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    env = {"TONGBAN_REGISTRATION_LICENCE_TYPES": json.dumps(LICENCE_TYPES)}
    with node_process(tmp_path_factory.mktemp("security-node"), env=env) as running:
        yield running


@pytest.fixture(scope="package")
def world(node: NodeProcess) -> Iterator[World]:
    with httpx.Client(base_url=f"{node.gateway}/api", timeout=30) as api:
        yield World(
            node=node,
            api=api,
            writes=Writes(node),
            alice=sign_up(node, resident_id=resident_id(1), name="爱丽丝"),
            bob=sign_up(node, resident_id=resident_id(2), name="鲍勃"),
            samr=department(node, "samr", "identity:assurance registration:review"),
            tax=department(node, "tax", DATA_SCOPES),
            statistics=department(node, "statistics", DATA_SCOPES),
            customs=department(node, "customs", DATA_SCOPES),
        )


@pytest.fixture(scope="package")
def tax_grant(world: World) -> dict[str, Any]:
    """Tax's pull grant of new businesses' USCC and name."""
    return world.grant(world.tax, ["uscc", "name"])


@pytest.fixture(scope="package")
def business(world: World, tax_grant: dict[str, Any]) -> str:
    """The USCC of a business Alice registered (applied, reviewed and approved), once tax's
    delivery of it exists."""
    alice = world.substantial(world.alice)
    drafted = world.api.post(
        "/registration/v1/applications",
        json=application(
            name="深圳市爱丽丝安全测试科技有限公司",
            legal_representative={"name": "爱丽丝", "resident_id": resident_id(1)},
        ),
        headers=alice,
    )
    assert drafted.status_code == 201, drafted.text
    path = f"/registration/v1/applications/{drafted.json()['id']}"
    submitted = world.api.post(f"{path}/submit", headers=alice)
    assert submitted.status_code == 200, submitted.text
    review = path.replace("/applications/", "/review/applications/")
    claimed = world.api.post(f"{review}/claim", headers=world.samr.headers)
    assert claimed.status_code == 200, claimed.text
    approved = world.api.post(
        f"{review}/decision",
        json={"decision": "approve"},
        headers={"Idempotency-Key": "security-approve-1", **world.samr.headers},
    )
    assert approved.status_code == 200, approved.text
    delivered = world.api.get(
        "/exchange/v1/deliveries",
        params={"after": 0, "wait": 30},
        headers=world.tax.headers,
        timeout=40,
    )
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["events"], "tax never received the business"
    return str(approved.json()["uscc"])


@pytest.fixture(scope="package")
def licensing(world: World) -> Department:
    """A licensing officer (``registration:licensing``), enrolled only for the tests that
    decide, suspend or reinstate (``make security``: enrolling takes seconds)."""
    return department(world.node, "licensing", "registration:licensing")


@pytest.fixture(scope="package")
def pending_licence(world: World, business: str) -> dict[str, Any]:
    """Alice's application for a licence that waits for an officer."""
    return world.apply_for_licence(world.alice, business, WAITS)


@pytest.fixture(scope="package")
def issued_licence(world: World, business: str) -> dict[str, Any]:
    """Alice's application for a licence issued at once, with its licence."""
    applied = world.apply_for_licence(world.alice, business, INSTANT)
    assert applied["status"] == "approved", applied
    return applied


@pytest.fixture(scope="package")
def alice_document(world: World) -> tuple[str, dict[str, Any]]:
    """Alice's draft application (its id) with a document uploaded to it."""
    draft = world.draft(
        world.alice,
        name="深圳市爱丽丝文件测试科技有限公司",
        legal_representative={"name": "爱丽丝", "resident_id": resident_id(1)},
    )
    return draft["id"], world.upload(world.alice, draft["id"], PDF)
