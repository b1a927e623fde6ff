"""Three nodes on one machine (``tongban nodes up``): central 100000 and regional 440300 and
310000, enrolled in central's directory. A business registered at 440300 is seen through
310000; node assertions that are forged, replayed, expired or from an unknown node are refused;
with central stopped the regional nodes keep serving on their cached directory, even across a
gateway restart; a person of 440300 signs in at 310000 with 440300's token (a visitor)."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tongban_kit.auth.node_keys import development_node_key, node_identifier, public_jwk
from tongban_kit.infra import free_ports
from tongban_kit.node.nodes import Federation, NodePlan
from tongban_kit.testing.callers import Identity, department
from tongban_registration.testing import application

PERSON = {
    "resident_id": "11010519491231002X",
    "name": "张三",
    "phone": "13800138000",
    "password": "correct horse battery staple",
}
SERVICES = ("GATEWAY", "IDENTITY", "REGISTRATION", "EXCHANGE")
# Twelve services, three brokers: about a minute on an idle 2-core machine, far more on a
# loaded one; the default per-test timeout would count all of it against the first test.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def nodes() -> Iterator[Federation]:
    places = (("100000", "中央"), ("440300", "深圳市"), ("310000", "上海市"))
    ports = iter(free_ports(len(places) * (len(SERVICES) + 1) + 1))  # all different
    plan = [
        NodePlan(code, name, {service: next(ports) for service in SERVICES}, next(ports))
        for code, name in places
    ]
    # Not under pytest's own temporary directory: other pytest sessions on the machine reset
    # its permissions, which PostgreSQL's service account must walk through.
    state = Path(tempfile.mkdtemp(prefix="tongban-nodes-"))
    federation = Federation(state, plan=plan, postgres_port=next(ports), refresh_s=1.0)
    try:
        federation.start()
        yield federation
    finally:
        federation.stop()
        shutil.rmtree(state, ignore_errors=True)


def _eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def _login(api: httpx.Client) -> dict[str, str]:
    login = api.post(
        "/identity/v1/login",
        json={"resident_id": PERSON["resident_id"], "password": PERSON["password"]},
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _samr(nodes: Federation, code: str) -> dict[str, str]:
    """Market regulation at node ``code``, enrolled by its operator, with a token it got through
    that node's gateway."""
    gateway = nodes.gateway(code)
    identity = Identity(
        nodes.identity_env(code), gateway, f"{gateway}/api/identity/oauth/token", nodes.state_dir
    )
    return department(identity, "samr", "identity:assurance registration:review").headers


@pytest.fixture(scope="module")
def shenzhen_business(nodes: Federation) -> dict[str, Any]:
    """A business registered at 440300, from draft to approval: its USCC and licence."""
    api = httpx.Client(base_url=f"{nodes.gateway('440300')}/api", timeout=15)
    signed_up = api.post("/identity/v1/persons", json=PERSON)
    assert signed_up.status_code == 201, signed_up.text
    samr = _samr(nodes, "440300")
    draft = api.post(
        "/registration/v1/applications",
        json=application(name="深圳市跨省通办测试科技有限公司"),
        headers=_login(api),
    )
    assert draft.status_code == 201, draft.text
    raised = api.post(
        f"/identity/v1/persons/{signed_up.json()['id']}/assurance/substantial",
        json={"source": "household-register"},
        headers=samr,
    )
    assert raised.status_code == 200, raised.text
    base = f"/registration/v1/applications/{draft.json()['id']}"
    submitted = api.post(f"{base}/submit", headers=_login(api))
    assert submitted.status_code == 200, submitted.text
    review = f"/registration/v1/review/applications/{draft.json()['id']}"
    assert api.post(f"{review}/claim", headers=samr).status_code == 200
    approved = api.post(
        f"{review}/decision",
        json={"decision": "approve"},
        headers={"Idempotency-Key": "approve-1", **samr},
    )
    assert approved.status_code == 200, approved.text
    uscc = approved.json()["uscc"]
    licence = _eventually(
        lambda: api.get(f"/registration/v1/businesses/{uscc}/licence"), timeout=30
    )
    assert licence.status_code == 200, licence.text
    return {"uscc": uscc, "licence": licence.json()}


def _assertion(key: ec.EllipticCurvePrivateKey, code: str, *, age_s: int = 0) -> str:
    now = int(time.time()) - age_s
    claims = {
        "iss": node_identifier(code),
        "sub": node_identifier(code),
        "aud": node_identifier("440300"),
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    headers = {"kid": public_jwk(key)["kid"], "typ": "tongban-node+jwt"}
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


def test_a_business_of_440300_is_seen_through_310000_and_its_licence_verifies_at_either(
    nodes: Federation, shenzhen_business: dict[str, Any]
) -> None:
    uscc = shenzhen_business["uscc"]
    payload = shenzhen_business["licence"]["qr_payload"]
    assert uscc[2:8] == "440300"

    for code in ("310000", "440300"):
        api = httpx.Client(base_url=f"{nodes.gateway(code)}/api/registration/v1", timeout=15)
        profile = api.get(f"/businesses/{uscc}")
        by_payload = api.get("/licences/verify", params={"payload": payload})
        by_uscc = api.get("/licences/verify", params={"uscc": uscc})

        assert profile.status_code == 200, (code, profile.text)
        assert profile.json()["name"] == "深圳市跨省通办测试科技有限公司"
        assert by_payload.status_code == 200, (code, by_payload.text)
        assert (by_payload.json()["valid"], by_payload.json()["uscc"]) == (True, uscc)
        assert by_uscc.json()["status"] == "active", code
    # Shanghai's own register does not hold it: the answer came from Shenzhen.
    shanghai = httpx.get(
        f"http://127.0.0.1:{nodes.plan[2].ports['REGISTRATION']}/v1/businesses/{uscc}", timeout=5
    )
    assert shanghai.status_code == 404


def test_node_assertions_that_do_not_hold_are_refused(nodes: Federation) -> None:
    api = httpx.Client(base_url=nodes.gateway("440300"), timeout=10)
    path = "/api/registration/v1/businesses?q=科技"
    shanghai = development_node_key("310000")
    replayed = _assertion(shanghai, "310000")
    cases = {
        "wrong key": _assertion(ec.generate_private_key(ec.SECP256R1()), "310000"),
        "expired": _assertion(shanghai, "310000", age_s=300),
        "unknown node": _assertion(development_node_key("120000"), "120000"),
    }

    first = api.get(path, headers={"tongban-node-assertion": replayed})
    answers = {
        name: api.get(path, headers={"tongban-node-assertion": value})
        for name, value in cases.items()
    }
    answers["replayed jti"] = api.get(path, headers={"tongban-node-assertion": replayed})

    assert first.status_code == 200, first.text
    for name, answer in answers.items():
        assert answer.status_code == 401, (name, answer.text)
        assert answer.headers["content-type"] == "application/problem+json", name


def test_a_person_of_440300_signs_in_at_310000_as_a_visitor(
    nodes: Federation, shenzhen_business: dict[str, Any]
) -> None:
    """The token 440300's identity issued is taken by 310000's gateway and registration: the
    person applies there, with visitor scopes only; a token that 440300 did not sign is not."""
    token = _login(httpx.Client(base_url=f"{nodes.gateway('440300')}/api", timeout=15))
    away = httpx.Client(base_url=f"{nodes.gateway('310000')}/api/registration/v1", timeout=15)

    body = application(
        name="上海市跨省通办访客测试有限公司",
        address={"line": "浦东新区世纪大道1号", "division_code": "310115"},
    )
    draft = away.post("/applications", json=body, headers=token)
    # substantial at home (confirmed by 440300's market regulation): enough to submit here
    submitted = away.post(f"/applications/{draft.json()['id']}/submit", headers=token)
    mine = away.get("/applications", headers=token)
    officer = away.get("/review/applications", headers=token)
    forged_key = ec.generate_private_key(ec.SECP256R1())
    claims = jwt.decode(token["Authorization"].split()[1], options={"verify_signature": False})
    forged = jwt.encode(
        claims, forged_key, algorithm="ES256", headers={"kid": "forged", "typ": "at+jwt"}
    )
    refused = away.get("/applications", headers={"Authorization": f"Bearer {forged}"})

    assert draft.status_code == 201, draft.text
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"
    assert [item["id"] for item in mine.json()["items"]] == [draft.json()["id"]]
    assert officer.status_code == 403, officer.text
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"] == "application/problem+json"


def test_with_central_stopped_regional_nodes_serve_on_their_cached_directory(
    nodes: Federation, shenzhen_business: dict[str, Any]
) -> None:
    uscc = shenzhen_business["uscc"]
    nodes.stop_node("100000")
    shanghai = nodes.nodes["310000"]
    gateway = next(child for child in shanghai.children if child.spec.name == "gateway")
    assert gateway.process is not None
    gateway.process.terminate()  # a restart while central is down: the copy on disk remains
    gateway.process.wait(15)
    shanghai.restart_dead()
    url = nodes.gateway("310000")

    def ready() -> dict[str, Any] | None:
        try:
            answer = httpx.get(f"{url}/readyz", timeout=2)
        except httpx.HTTPError:
            return None
        return answer.json() if answer.status_code == 200 else None

    readiness = _eventually(ready, timeout=30)
    profile = httpx.get(f"{url}/api/registration/v1/businesses/{uscc}", timeout=15)

    assert readiness is not None, "the restarted gateway never became ready"
    directory = readiness["details"]["directory"]
    assert directory["valid"] is True
    assert directory["last_error"] is not None  # central cannot be reached
    assert directory["nodes"] == ["100000", "310000", "440300"]
    assert profile.status_code == 200, profile.text
