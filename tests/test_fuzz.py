"""Fuzzing every service's API from its own OpenAPI document, directly and through the gateway.

schemathesis generates requests from each operation's schema, valid and invalid alike, and
sends them to a node started the way `make run` starts it, with a signed-in person's token:
to each service on its own port (its own document), and through the gateway (the gateway's
merged document).
Whatever it sends, no answer may be a 5xx, and every refusal (4xx) must be problem+json.

`make test` runs a bounded number of cases per operation (`TONGBAN_FUZZ_EXAMPLES`, default
5); `make fuzz` runs the long one (at least 1,000 cases per service).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from tongban_kit.testing.node import NodeProcess, node_process

pytestmark = pytest.mark.node

EXAMPLES = int(os.environ.get("TONGBAN_FUZZ_EXAMPLES", "5"))
SERVICES = ("identity", "registration", "exchange")
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with node_process(tmp_path_factory.mktemp("fuzz-node")) as running:
        yield running


@pytest.fixture(scope="module")
def person(node: NodeProcess) -> dict[str, str]:
    api = f"{node.gateway}/api/identity"
    person = {
        "resident_id": "11010519491231002X",
        "name": "张三",
        "phone": "13800138000",
        "password": "correct horse battery staple",
    }
    assert httpx.post(f"{api}/v1/persons", json=person).status_code == 201
    login = httpx.post(
        f"{api}/v1/login",
        json={"resident_id": person["resident_id"], "password": person["password"]},
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


@dataclass
class Findings:
    cases: int = 0
    problems: list[str] = field(default_factory=list)

    def note(self, where: str, problem: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(f"{where}: {problem}")


def fuzz(
    base_url: str, headers: dict[str, str], findings: Findings, label: str, prefix: str = ""
) -> None:
    """Every operation under ``prefix`` of the OpenAPI document at ``base_url``, EXAMPLES
    cases each."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(prefix):
            continue
        where = f"{label} {operation.method.upper()} {operation.path}"
        _fuzz_operation(operation, base_url, session, headers, findings, where)


def _fuzz_operation(
    operation: schemathesis.APIOperation,
    base_url: str,
    session: requests.Session,
    headers: dict[str, str],
    findings: Findings,
    where: str,
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        findings.cases += 1
        response = case.call(base_url=base_url, session=session, headers=headers)
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except (AssertionError, FailureGroup) as failure:
            findings.note(where, f"{response.status_code} {str(failure)[:300]}")
            return
        kind = (response.headers.get("content-type") or [""])[0]
        if 400 <= response.status_code < 500 and kind != PROBLEM:
            findings.note(where, f"{response.status_code} answered as {kind!r}")

    run()


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("route", ["direct", "gateway"])
def test_no_request_makes_a_service_fail_and_every_refusal_is_problem_json(
    node: NodeProcess, person: dict[str, str], service: str, route: str
) -> None:
    findings = Findings()
    label = f"{service} ({route})"

    if route == "direct":
        fuzz(node.service_url(service), person, findings, label)
    else:  # the gateway's merged document names each service's paths under /api/<service>/
        fuzz(node.gateway, person, findings, label, prefix=f"/api/{service}/")

    print(f"{service} ({route}): {findings.cases} generated cases")
    assert findings.cases >= EXAMPLES
    assert not findings.problems, "\n".join(findings.problems)
