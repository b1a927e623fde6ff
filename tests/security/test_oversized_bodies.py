"""Oversized bodies: over the node's limit (1 MiB by default), by ``Content-Length`` or
streamed without one, every write route answers 413 problem+json and writes nothing; through
the gateway and on the service's own port alike. The one route with a larger limit, a
document upload (10 MiB), likewise just above its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from security_world import BUSINESS_REGISTERED, World, assert_problem, sample

pytestmark = pytest.mark.node

LIMIT = 1_048_576
# (service, path, method, a JSON prefix the huge string completes, needs which caller)
WRITES = [
    ("identity", "/v1/persons", "POST", b'{"resident_id": "1", "name": "', None),
    ("registration", "/v1/applications", "POST", b'{"name": "', "bob"),
    (
        "exchange",
        "/v1/grants",
        "POST",
        b'{"dataset": "' + BUSINESS_REGISTERED.encode() + b'", "purpose": "',
        "customs",
    ),
    (
        "exchange",
        "/v1/datasets/gov.tongban.tax.status.record.v1/records/k1",
        "PUT",
        b'{"version": 1, "data": {"status": "',
        "tax",
    ),
]


def _headers(world: World, caller: str | None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if caller == "bob":
        headers |= world.headers(world.bob)
    elif caller is not None:
        headers |= getattr(world, caller).headers
    return headers


def _huge(prefix: bytes) -> bytes:
    return prefix + b"x" * (LIMIT + 1) + b'"}'


@pytest.mark.parametrize("route", sample(["gateway", "direct"], quick=1))
@pytest.mark.parametrize(("service", "path", "method", "prefix", "caller"), WRITES)
def test_a_body_over_the_limit_is_a_413_and_writes_nothing(
    world: World,
    route: str,
    service: str,
    path: str,
    method: str,
    prefix: bytes,
    caller: str | None,
) -> None:
    base = (
        f"{world.node.gateway}/api/{service}"
        if route == "gateway"
        else world.node.service_url(service)
    )
    headers = _headers(world, caller)
    before = world.writes.snapshot()

    answer = world.api.request(method, f"{base}{path}", content=_huge(prefix), headers=headers)

    assert_problem(answer, 413)
    assert world.writes.snapshot() == before


def test_a_streamed_body_without_length_is_cut_off_at_the_limit(world: World) -> None:
    headers = _headers(world, "bob")
    before = world.writes.snapshot()

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(40):  # 2.5 MiB in 64 KiB pieces, no Content-Length: chunked
            yield b"x" * 65_536
        yield b'"}'

    answer = world.api.post("/registration/v1/applications", content=chunks(), headers=headers)

    assert_problem(answer, 413)
    assert world.writes.snapshot() == before


DOCUMENT_LIMIT = 10_485_760  # TONGBAN_REGISTRATION_DOCUMENT_MAX_BYTES; the gateway's matches


@pytest.mark.parametrize(
    ("route", "streamed"),
    sample([("gateway", True), ("direct", False), ("gateway", False), ("direct", True)]),
)
def test_a_document_over_its_limit_is_a_413_and_nothing_is_stored(
    world: World, route: str, streamed: bool
) -> None:
    draft = world.draft(world.bob, name=f"深圳市鲍勃大文件{route}{int(streamed)}科技有限公司")
    base = (
        f"{world.node.gateway}/api/registration"
        if route == "gateway"
        else world.node.service_url("registration")
    )
    path = f"/v1/applications/{draft['id']}/documents"
    bob = world.headers(world.bob)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"%PDF-1.7\n"
        for _ in range(DOCUMENT_LIMIT // 65_536 + 1):
            yield b"x" * 65_536

    content = chunks() if streamed else b"%PDF-1.7\n" + b"x" * DOCUMENT_LIMIT
    before = world.writes.snapshot()

    answer = world.api.post(
        f"{base}{path}",
        params={"filename": "大文件.pdf"},
        content=content,
        headers={**bob, "content-type": "application/pdf"},
        timeout=120,
    )

    assert_problem(answer, 413)
    assert world.writes.snapshot() == before
    listed = world.api.get(f"/registration{path}", headers=bob)
    assert listed.json()["items"] == []
