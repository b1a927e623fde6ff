"""Fuzzing every service's API from its own OpenAPI document, directly and through the gateway.

schemathesis generates requests from each operation's schema, valid and invalid alike, and
sends them to a node started the way `make run` starts it, with a signed-in person's token:
to each service on its own port (its own document), and through the gateway (the gateway's
merged document).
Requests are valid and invalid alike (schemathesis' positive and negative modes). Whatever
it sends, no answer may be a 5xx, and every answer must be one the operation documents: its
status code, its content type and a body that conforms to the documented schema (every refusal
is RFC 9457 problem+json, documented on every route by the kit's ``tongban_kit.openapi``).

`make test` runs a bounded number of cases per operation (`TONGBAN_FUZZ_EXAMPLES`, default
5); `make fuzz` runs the long one (at least 1,000 cases per service).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup

from tongban_kit.testing.node import NodeProcess, node_process

pytestmark = pytest.mark.node

EXAMPLES = int(os.environ.get("TONGBAN_FUZZ_EXAMPLES", "5"))
SERVICES = ("identity", "registration", "exchange")
PROBLEM = "application/problem+json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


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
    failed_cases: int = 0
    # One line per (operation, kind of failure), with how often it was seen.
    problems: dict[str, int] = field(default_factory=dict)

    def note(self, where: str, problem: str) -> None:
        key = f"{where}: {problem}"
        self.problems[key] = self.problems.get(key, 0) + 1

    def report(self) -> str:
        return "\n".join(f"{n:>4} x {key}" for key, n in sorted(self.problems.items()))


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
    @given(case=_cases(operation))
    def run(case: schemathesis.Case) -> None:
        findings.cases += 1
        response = case.call(base_url=base_url, session=session, headers=headers)
        failures: list[Failure | AssertionError] = []
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            failures += group.exceptions
        except (Failure, AssertionError) as failure:
            failures.append(failure)
        kind = (response.headers.get("content-type") or [""])[0]
        if 400 <= response.status_code < 500 and kind != PROBLEM:
            failures.append(AssertionError(f"answered as {kind!r}"))
        if failures:
            findings.failed_cases += 1
        for failure in failures:
            title = getattr(failure, "title", type(failure).__name__)
            message = str(getattr(failure, "message", failure)).replace("\n", " ")[:240]
            findings.note(where, f"{response.status_code} {title}: {message}")

    run()


def _cases(operation: schemathesis.APIOperation) -> Any:
    """Valid requests and invalid ones (where the schema allows something invalid)."""
    positive = operation.as_strategy(GenerationMode.POSITIVE)
    try:
        return positive | operation.as_strategy(GenerationMode.NEGATIVE)
    except Exception:  # an operation with nothing to get wrong: valid requests only
        return positive


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

    print(f"{service} ({route}): {findings.cases} generated cases, {findings.failed_cases} failed")
    assert findings.cases >= EXAMPLES
    assert not findings.problems, findings.report()
