"""Fuzzing every service's API from its own OpenAPI document, directly and through the gateway.

schemathesis generates requests from each operation's schema, valid and invalid alike, and
sends them to a node started the way `make run` starts it, each case as one of two callers
drawn at random: a signed-in person, or a department holding every department scope (so the
department routes are fuzzed past their access check, not only refused at it):
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

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup

from tongban_kit.testing.callers import Person, department, sign_up
from tongban_kit.testing.node import NodeProcess, node_process

pytestmark = pytest.mark.node

EXAMPLES = int(os.environ.get("TONGBAN_FUZZ_EXAMPLES", "5"))
SERVICES = ("identity", "registration", "exchange")
DEPARTMENT_SCOPES = (
    "identity:assurance",
    "identity:introspect",
    "registration:review",
    "exchange:subscribe",
    "exchange:query",
    "exchange:acknowledge",
    "exchange:publish",
    "exchange:approve",
)
PROBLEM = "application/problem+json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    # A pull may long-poll for up to 30 s by default; a second is enough to fuzz it and keeps
    # every case within the client's timeout.
    wait = {"TONGBAN_EXCHANGE_PULL_MAX_WAIT_S": "1"}
    with node_process(tmp_path_factory.mktemp("fuzz-node"), env=wait) as running:
        yield running


@pytest.fixture(scope="module")
def person(node: NodeProcess) -> Person:
    return sign_up(node, resident_id="11010519491231002X", name="张三")


@pytest.fixture
def callers(
    node: NodeProcess, person: Person, request: pytest.FixtureRequest
) -> list[dict[str, str]]:
    """Bearer headers of the person and of a department with every department scope, fresh
    for each test (access tokens live five minutes; a long run outlasts them)."""
    code = "fuzz-" + "-".join(str(v) for v in request.node.callspec.params.values())
    agency = department(node, code, " ".join(DEPARTMENT_SCOPES))
    return [person.login(node), agency.headers]


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
    base_url: str,
    callers: list[dict[str, str]],
    findings: Findings,
    label: str,
    prefix: str = "",
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
        _fuzz_operation(operation, base_url, session, callers, findings, where)


def _fuzz_operation(
    operation: schemathesis.APIOperation,
    base_url: str,
    session: requests.Session,
    callers: list[dict[str, str]],
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
    @given(case=_cases(operation), headers=st.sampled_from(callers))
    def run(case: schemathesis.Case, headers: dict[str, str]) -> None:
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
    node: NodeProcess, callers: list[dict[str, str]], service: str, route: str
) -> None:
    findings = Findings()
    label = f"{service} ({route})"

    if route == "direct":
        fuzz(node.service_url(service), callers, findings, label)
    else:  # the gateway's merged document names each service's paths under /api/<service>/
        fuzz(node.gateway, callers, findings, label, prefix=f"/api/{service}/")

    print(f"{service} ({route}): {findings.cases} generated cases, {findings.failed_cases} failed")
    assert findings.cases >= EXAMPLES
    assert not findings.problems, findings.report()
