"""A whole node, started the way `make run` starts it, driven over real sockets."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import psutil
import pytest
from standardwebhooks import Webhook

from tongban_kit.auth import ServiceTokens
from tongban_kit.auth.client import load_service_key
from tongban_kit.events import CloudEvent
from tongban_kit.settings import NodeSettings
from tongban_kit.testing import EventProbe
from tongban_kit.testing.callers import department
from tongban_kit.testing.node import NodeProcess, node_process
from tongban_registration.testing import application

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with node_process(
        tmp_path_factory.mktemp("node"),
        env={"TONGBAN_REGISTRATION_LICENCE_TYPES": json.dumps([FOOD_OPERATION])},
    ) as running:
        yield running


def _eventually(check, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_the_gateway_reports_every_service_ready(node: NodeProcess) -> None:
    response = httpx.get(f"{node.gateway}/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {
        "identity_keys": "ok",
        "identity": "ok",
        "registration": "ok",
        "exchange": "ok",
    }


#: An accreditation licence type the node is configured with (证照分离).
FOOD_OPERATION = {
    "code": "food-operation",
    "name": "食品经营许可证",
    "number_prefix": "JY",
    "scope_covers": ["食品销售"],
}
PERSON = {
    "resident_id": "11010519491231002X",
    "name": "张三",
    "phone": "13800138000",
    "password": "correct horse battery staple",
}


def _login(api: httpx.Client) -> str:
    login = api.post(
        "/identity/v1/login",
        json={"resident_id": PERSON["resident_id"], "password": PERSON["password"]},
    )
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def _department_token(node: NodeProcess, code: str, scopes: str) -> str:
    """Enrol a department with the `tongban departments` command, as an operator does, and get
    its token with private_key_jwt (RFC 7523): the kit's ``callers.department``."""
    return department(node, code, scopes).headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture(scope="module")
def person(node: NodeProcess) -> dict[str, str]:
    """Headers of a person who signed up and signed in (level `low`)."""
    api = httpx.Client(base_url=f"{node.gateway}/api", timeout=10)
    signed_up = api.post("/identity/v1/persons", json=PERSON)
    assert signed_up.status_code == 201, signed_up.text
    return {"Authorization": f"Bearer {_login(api)}", "X-Person-Id": signed_up.json()["id"]}


class WebhookReceiver:
    """Social security's webhook endpoint: a small real HTTP server keeping what it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tongban/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver()
    yield running
    running.server.shutdown()


BUSINESS_REGISTERED = "gov.tongban.registration.business.registered.v1"


def _subscribed_departments(
    api: httpx.Client, node: NodeProcess, receiver: WebhookReceiver
) -> dict[str, dict[str, str]]:
    """Tax by its Kafka topic, social security by webhook, statistics by pull, each granted
    other fields of new businesses; customs enrolled with no grant (so it receives nothing).
    Their headers by code."""
    scopes = "exchange:subscribe exchange:query exchange:acknowledge"
    departments = {
        code: {"Authorization": "Bearer " + _department_token(node, code, scopes)}
        for code in ("tax", "social-security", "statistics", "customs")
    }
    wanted = {
        "tax": (["uscc", "name", "registered_capital"], {"mode": "kafka"}),
        "social-security": (
            ["uscc", "legal_representative"],
            {"mode": "webhook", "url": receiver.url},
        ),
        "statistics": (["uscc", "entity_type", "address"], {"mode": "pull"}),
    }
    for code, (fields, delivery) in wanted.items():
        granted = api.post(
            "/exchange/v1/grants",
            json={
                "dataset": BUSINESS_REGISTERED,
                "purpose": f"open the {code} record of every new business",
                "legal_basis": "多证合一 (State Council 2017 No. 41)",
                "fields": fields,
                "delivery": delivery,
            },
            headers=departments[code],
        )
        assert granted.status_code in (200, 201), granted.text
        assert granted.json()["status"] == "granted"
        if code == "social-security":
            departments[code]["X-Webhook-Secret"] = granted.json()["webhook_secret"]
    return departments


def _each_department_gets_its_fields_with_one_event_id(
    api: httpx.Client,
    node: NodeProcess,
    departments: dict[str, dict[str, str]],
    receiver: WebhookReceiver,
    uscc: str,
) -> None:
    async def read_tax_topic() -> list[CloudEvent]:
        broker = NodeSettings(
            kafka_bootstrap_servers=f"127.0.0.1:{node.env['TONGBAN_EMBEDDED_KAFKA_PORT']}"
        )
        async with EventProbe(broker, "exchange.to.tax") as probe:
            return await probe.collect(lambda seen: len(seen) >= 1, timeout=30)

    (tax,) = asyncio.run(read_tax_topic())
    statistics = api.get(
        "/exchange/v1/deliveries",
        params={"after": 0, "wait": 20},
        headers=departments["statistics"],
        timeout=30,
    ).json()["events"]
    assert _eventually(lambda: receiver.received, timeout=30), "no webhook came"
    headers, body = receiver.received[0]
    social = Webhook(departments["social-security"]["X-Webhook-Secret"]).verify(body, headers)

    assert tax.type == BUSINESS_REGISTERED
    assert tax.id == headers["webhook-id"] == statistics[0]["id"] == social["id"]
    assert set(tax.data) == {"uscc", "name", "registered_capital"}
    assert tax.data["uscc"] == uscc
    assert set(statistics[0]["data"]) == {"uscc", "entity_type", "address"}
    assert set(social["data"]) == {"uscc", "legal_representative"}
    # Social security sees the representative by its own pseudonym, never the ID number.
    assert PERSON["resident_id"] not in body.decode()
    customs = departments["customs"]
    nothing = api.get("/exchange/v1/deliveries", params={"wait": 0}, headers=customs).json()
    assert nothing["events"] == []


def test_an_application_becomes_a_business_every_service_and_department_learns_of(
    node: NodeProcess, person: dict[str, str], receiver: WebhookReceiver
) -> None:
    api = httpx.Client(base_url=f"{node.gateway}/api", timeout=10)
    low = {"Authorization": person["Authorization"]}
    # Market regulation: confirms persons against the household register and reviews.
    samr = {
        "Authorization": "Bearer "
        + _department_token(node, "samr", "identity:assurance registration:review")
    }
    # Three departments subscribe to new businesses, each by its own mode; customs does not.
    departments = _subscribed_departments(api, node, receiver)
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    draft = api.post(
        "/registration/v1/applications",
        json=application(name="深圳市通办测试科技有限公司"),
        headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01", **low},
    )
    assert draft.status_code == 201, draft.text
    assert draft.headers["traceparent"].split("-")[1] == trace_id
    application_id = draft.json()["id"]
    at_low = api.post(f"/registration/v1/applications/{application_id}/submit", headers=low)
    assert at_low.status_code == 401, at_low.text  # step up first

    raised = api.post(
        f"/identity/v1/persons/{person['X-Person-Id']}/assurance/substantial",
        json={"source": "household-register"},
        headers=samr,
    )
    assert raised.status_code == 200, raised.text
    substantial = {"Authorization": f"Bearer {_login(api)}"}
    submitted = api.post(
        f"/registration/v1/applications/{application_id}/submit", headers=substantial
    )
    assert submitted.status_code == 200, submitted.text
    claimed = api.post(f"/registration/v1/review/applications/{application_id}/claim", headers=samr)
    assert claimed.status_code == 200, claimed.text
    approved = api.post(
        f"/registration/v1/review/applications/{application_id}/decision",
        json={"decision": "approve"},
        headers={"Idempotency-Key": "approve-1", **samr},
    )
    assert approved.status_code == 200, approved.text
    uscc = approved.json()["uscc"]

    legal = _eventually(lambda: api.get(f"/identity/v1/legal-persons/{uscc}").status_code == 200)
    record = _eventually(
        lambda: api.get(f"/exchange/v1/records/businesses/{uscc}", headers=low).status_code == 200
    )
    assert legal, "identity never saw the business"
    assert record, "data-exchange never saw the business"

    licence = api.get(f"/registration/v1/businesses/{uscc}/licence")
    assert licence.status_code == 200, licence.text  # signed by identity for svc-registration
    verified = api.get(
        "/registration/v1/licences/verify", params={"payload": licence.json()["qr_payload"]}
    )
    assert (verified.json()["valid"], verified.json()["status"]) == (True, "active")

    _each_department_gets_its_fields_with_one_event_id(api, node, departments, receiver, uscc)
    tax = departments["tax"]
    by_the_person = api.post(
        "/exchange/v1/acknowledgements",
        json={"uscc": uscc, "reference": "SZ-TAX-0000"},
        headers=low,
    )
    ack = api.post(
        "/exchange/v1/acknowledgements",
        json={"uscc": uscc, "reference": "SZ-TAX-0001"},
        headers=tax,
    )
    assert by_the_person.status_code == 403, by_the_person.text
    assert ack.status_code == 201, ack.text
    assert ack.json()["department"] == "tax"

    def acknowledged() -> bool:
        mine = api.get(f"/registration/v1/applications/{application_id}", headers=substantial)
        return [a["reference"] for a in mine.json()["acknowledgements"]] == ["SZ-TAX-0001"]

    assert _eventually(acknowledged), "the acknowledgement never reached the applicant"


def test_a_business_gets_a_food_licence_the_public_verifies_through_the_gateway(
    node: NodeProcess,
) -> None:
    api = httpx.Client(base_url=f"{node.gateway}/api", timeout=10)
    holder = {**PERSON, "resident_id": "110105199003071239", "phone": "13800138001"}
    signed_up = api.post("/identity/v1/persons", json=holder)
    assert signed_up.status_code == 201, signed_up.text
    officer = {
        "Authorization": "Bearer "
        + _department_token(
            node,
            "samr-licensing",
            "identity:assurance registration:review registration:licensing",
        )
    }
    raised = api.post(
        f"/identity/v1/persons/{signed_up.json()['id']}/assurance/substantial",
        json={"source": "household-register"},
        headers=officer,
    )
    assert raised.status_code == 200, raised.text
    login = api.post(
        "/identity/v1/login",
        json={"resident_id": holder["resident_id"], "password": holder["password"]},
    )
    person = {"Authorization": f"Bearer {login.json()['access_token']}"}
    body = application(name="深圳市通办食品销售有限公司", business_scope="食品销售；餐饮服务")
    draft = api.post("/registration/v1/applications", json=body, headers=person).json()
    api.post(f"/registration/v1/applications/{draft['id']}/submit", headers=person)
    api.post(f"/registration/v1/review/applications/{draft['id']}/claim", headers=officer)
    approved = api.post(
        f"/registration/v1/review/applications/{draft['id']}/decision",
        json={"decision": "approve"},
        headers=officer,
    )
    assert approved.status_code == 200, approved.text
    uscc = approved.json()["uscc"]

    types = api.get("/registration/v1/licence-types")
    applied = api.post(
        "/registration/v1/licence-applications",
        json={"uscc": uscc, "licence_type": "food-operation"},
        headers={"Idempotency-Key": "food-1", **person},
    )
    assert applied.status_code == 201, applied.text
    decided = api.post(
        f"/registration/v1/licensing/applications/{applied.json()['id']}/decision",
        json={"decision": "approve"},
        headers=officer,
    )
    assert decided.status_code == 200, decided.text
    licence = decided.json()["licence"]
    public = httpx.Client(base_url=f"{node.gateway}/api/registration", timeout=10)
    by_payload = public.get("/v1/licences/verify", params={"payload": licence["qr_payload"]})
    revoked = api.post(
        f"/registration/v1/licensing/licences/{licence['number']}/revoke",
        json={"reason": "以欺骗手段取得许可"},
        headers=officer,
    )
    by_number = public.get("/v1/licences/verify", params={"number": licence["number"]})

    assert [t["code"] for t in types.json()["items"]] == ["food-operation"]
    assert by_payload.status_code == 200, by_payload.text
    assert by_payload.json()["valid"] is True
    assert (by_payload.json()["kind"], by_payload.json()["status"]) == (
        "accreditation-licence",
        "active",
    )
    assert revoked.status_code == 200, revoked.text
    assert (by_number.json()["valid"], by_number.json()["status"]) == (True, "revoked")


def test_a_document_larger_than_the_node_body_limit_uploads_through_the_gateway(
    node: NodeProcess, person: dict[str, str]
) -> None:
    """The upload route takes more than TONGBAN_MAX_BODY_BYTES (1 MiB); no other route does."""
    api = httpx.Client(base_url=f"{node.gateway}/api/registration", timeout=30)
    auth = {"Authorization": person["Authorization"]}
    draft = api.post(
        "/v1/applications", json=application(name="深圳市通办上传测试有限公司"), headers=auth
    )
    assert draft.status_code == 201, draft.text
    pdf = b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024)

    uploaded = api.post(
        f"/v1/applications/{draft.json()['id']}/documents",
        params={"filename": "公司章程.pdf"},
        content=pdf,
        headers={**auth, "content-type": "application/pdf"},
    )
    downloaded = api.get(
        f"/v1/applications/{draft.json()['id']}/documents/{uploaded.json()['id']}", headers=auth
    )
    elsewhere = api.post("/v1/applications", content=pdf, headers=auth)

    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert downloaded.content == pdf
    assert elsewhere.status_code == 413


def test_services_that_call_identity_get_a_service_account_and_its_token(
    node: NodeProcess,
) -> None:
    """`node up` enrolled registration as client `svc-registration` with a key of its own;
    identity issues that key's holder a token with the scopes the spec names."""
    key = load_service_key(node.state_dir / "clients" / "registration.pem")
    tokens_url = f"{node.gateway}/api/identity/oauth/token"

    async def token() -> str:
        async with httpx.AsyncClient() as client:
            tokens = ServiceTokens(
                token_url=tokens_url,
                audience=tokens_url,
                client_id="svc-registration",
                key=key,
                http_client=client,
            )
            return await tokens.token()

    claims = jwt.decode(asyncio.run(token()), options={"verify_signature": False})

    assert claims["sub"] == "svc-registration"
    assert set(claims["scope"].split()) == {"identity:sign", "identity:verify", "exchange:query"}
    assert "registration: service account svc-registration" in node.output.read_text()


def test_bad_input_through_the_gateway_gets_problem_json(
    node: NodeProcess, person: dict[str, str]
) -> None:
    url = f"{node.gateway}/api/registration/v1/applications"
    headers = {"content-type": "application/json", "Authorization": person["Authorization"]}

    malformed = httpx.post(url, content=b'{"name": ', headers=headers)
    huge = httpx.post(url, content=b"x" * (10 * 1024 * 1024), headers=headers)

    assert malformed.status_code == 400
    assert malformed.headers["content-type"] == "application/problem+json"
    assert huge.status_code == 413
    assert huge.headers["content-type"] == "application/problem+json"


def test_ctrl_c_stops_the_node_and_leaves_no_process_behind(node: NodeProcess) -> None:
    launcher = psutil.Process(node.process.pid)
    family = [launcher, *launcher.children(recursive=True)]
    assert len(family) >= 5  # launcher, four services (plus the embedded servers)

    os.killpg(node.process.pid, signal.SIGINT)
    code = node.process.wait(timeout=40)

    assert code == 0, node.output.read_text()
    alive = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    leftovers = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if str(node.state_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []
