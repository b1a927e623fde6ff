"""Faults injected into a whole node while registrations and deliveries run through its gateway.

One node (``tongban node up``, embedded PostgreSQL and broker) is shared by every fault. For
each fault a load of journeys (draft, submit, claim, approve) runs through the gateway in a few
threads; a client retries what failed (5xx, 429, connection errors) as a real client would, so
a refusal is fine as long as the client saw it. Afterwards every accepted (2xx) application and
approval must be in the register, every approved business must have reached identity (legal
persons) and both departments (a webhook receiver and a pull consumer), and no business may have
been applied twice (two different event ids for one business, two USCCs for one application).

``make test`` runs a few journeys per fault; ``make faults`` runs many
(``TONGBAN_FAULTS_SIZE``, journeys per fault).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import psutil
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tongban_kit.infra import free_port
from tongban_kit.infra.broker import EmbeddedBroker
from tongban_kit.infra.postgres import EmbeddedPostgres
from tongban_kit.testing.node import NodeProcess, node_process
from tongban_registration.testing import application

pytestmark = pytest.mark.node

SIZE = int(os.environ.get("TONGBAN_FAULTS_SIZE", "12"))
WORKERS = 4
DIGITS = "零一二三四五六七八九"
PERSON = {
    "resident_id": "11010519491231002X",
    "name": "张三",
    "phone": "13800138000",
    "password": "correct horse battery staple",
}
DATASET = "gov.tongban.registration.business.registered.v1"


# -- the department's webhook receiver: a small real HTTP server --------------------------------


class Receiver:
    """Records every delivery by ``webhook-id``; can be taken down and brought back on its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: Counter[str] = Counter()
        self.by_uscc: dict[str, set[str]] = defaultdict(set)
        self.times: list[float] = []
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                event = json.loads(body)
                with receiver._lock:
                    receiver.deliveries[self.headers["webhook-id"]] += 1
                    receiver.times.append(time.monotonic())
                    receiver.by_uscc[event["data"]["uscc"]].add(self.headers["webhook-id"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/tongban"


# -- the node and the parties -------------------------------------------------------------------


@dataclass
class World:
    node: NodeProcess
    api: httpx.Client
    person: dict[str, str]
    officer: dict[str, str]
    puller: dict[str, str]
    receiver: Receiver
    pulled: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    cursor: int = 0
    # Operator-restarted infrastructure, stopped when the node stops.
    broker: EmbeddedBroker | None = None
    postgres: EmbeddedPostgres | None = None
    refresh: Callable[[], None] = lambda: None


def _department(
    node: NodeProcess, api: httpx.Client, code: str, scopes: str
) -> Callable[[], dict[str, str]]:
    """Enrol a department with ``tongban departments create``; the function returned gets a
    fresh token by private_key_jwt, as tests/test_node.py does."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": f"{code}-1", "use": "sig"}
    jwks_file = node.state_dir / f"{code}-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    env = {
        **node.env,
        "TONGBAN_IDENTITY_DATABASE_URL": f"{node.database_server}/tongban_identity",
    }
    enrolled = subprocess.run(
        [
            *(sys.executable, "-m", "tongban_kit.cli", "departments", "create"),
            *("--code", code, "--name", f"{code} department"),
            *("--scopes", scopes, "--jwks-file", str(jwks_file)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    client_id = enrolled.stdout.strip()

    def headers() -> dict[str, str]:
        return {"Authorization": "Bearer " + _client_token(node, api, client_id, key, code)}

    return headers


def _client_token(
    node: NodeProcess, api: httpx.Client, client_id: str, key: ec.EllipticCurvePrivateKey, code: str
) -> str:
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": client_id, "sub": client_id, "aud": f"{node.gateway}/api/identity/oauth/token"}
        | {"iat": now, "exp": now + 60, "jti": uuid.uuid4().hex},
        key,
        algorithm="ES256",
        headers={"kid": f"{code}-1"},
    )
    issued = api.post(
        "/identity/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])


def _login(api: httpx.Client) -> dict[str, str]:
    login = api.post(
        "/identity/v1/login",
        json={"resident_id": PERSON["resident_id"], "password": PERSON["password"]},
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    env = {
        # A webhook receiver that comes back is retried within seconds, not minutes.
        "TONGBAN_EXCHANGE_WEBHOOK_BACKOFF_INITIAL_S": "0.5",
        "TONGBAN_EXCHANGE_WEBHOOK_BACKOFF_MAX_S": "2",
    }
    receiver = Receiver()
    receiver.up()
    with node_process(tmp_path_factory.mktemp("faults-node"), env=env) as node:
        api = httpx.Client(base_url=f"{node.gateway}/api", timeout=30)
        signed_up = api.post("/identity/v1/persons", json=PERSON)
        assert signed_up.status_code == 201, signed_up.text
        samr = _department(node, api, "samr", "identity:assurance registration:review")
        officer = samr()
        raised = api.post(
            f"/identity/v1/persons/{signed_up.json()['id']}/assurance/substantial",
            json={"source": "household-register"},
            headers=officer,
        )
        assert raised.status_code == 200, raised.text
        hooked = _department(node, api, "tax", "exchange:subscribe")()
        stats = _department(node, api, "stats", "exchange:subscribe")
        puller = stats()
        for headers, delivery in (
            (hooked, {"mode": "webhook", "url": receiver.url}),
            (puller, {"mode": "pull"}),
        ):
            grant = api.post(
                "/exchange/v1/grants",
                json={
                    "dataset": DATASET,
                    "purpose": "registering new businesses",
                    "legal_basis": "税收征收管理法 第十五条",
                    "fields": ["uscc", "name"],
                    "personal": False,
                    "delivery": delivery,
                },
                headers=headers,
            )
            assert grant.status_code == 201, grant.text
            assert grant.json()["status"] == "granted", grant.text
        world = World(node, api, _login(api), officer, puller, receiver)

        def refresh() -> None:  # access tokens are short-lived; each fault starts afresh
            world.person, world.officer, world.puller = _login(api), samr(), stats()

        world.refresh = refresh
        try:
            yield world
        finally:
            node.stop()
            if world.broker is not None:
                world.broker.stop()
            if world.postgres is not None:
                world.postgres.stop()
            receiver.down()


# -- the load -----------------------------------------------------------------------------------


@dataclass
class Load:
    """What the clients were told: accepted drafts and approvals, refusals, success times."""

    drafts: list[str] = field(default_factory=list)
    approved: dict[str, str] = field(default_factory=dict)  # application id -> USCC
    refused: int = 0
    successes: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    abort: threading.Event = field(default_factory=threading.Event)

    def ok(self) -> None:
        with self.lock:
            self.successes.append(time.monotonic())

    def fail(self) -> None:
        with self.lock:
            self.refused += 1


def _call(load: Load, send: Callable[[], httpx.Response], done: tuple[int, ...] = ()) -> Any:
    """Send until the answer is 2xx (or one of ``done``: the step already happened on an attempt
    whose answer was lost); retry what a client may retry. Gives up after two minutes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not load.abort.is_set():
        try:
            response = send()
        except httpx.HTTPError:
            load.fail()
            time.sleep(0.3)
            continue
        if response.is_success:
            load.ok()
            return response.json()
        if response.status_code in done:
            return None
        if response.status_code >= 500 or response.status_code == 429:
            load.fail()
            time.sleep(0.3)
            continue
        raise AssertionError(f"{response.request.url}: {response.status_code} {response.text}")
    raise AssertionError("a step did not succeed within two minutes")


def _journey(world: World, load: Load, n: int) -> None:
    api = httpx.Client(base_url=f"{world.node.gateway}/api", timeout=15)
    name = "深圳市" + "".join(DIGITS[int(d)] for d in str(n)) + "号故障测试科技有限公司"
    draft = _call(
        load,
        lambda: api.post(
            "/registration/v1/applications", json=application(name=name), headers=world.person
        ),
    )
    app_id = draft["id"]
    with load.lock:
        load.drafts.append(app_id)
    base = f"/registration/v1/applications/{app_id}"
    _call(load, lambda: api.post(f"{base}/submit", headers=world.person), done=(409,))
    review = f"/registration/v1/review/applications/{app_id}"
    _call(load, lambda: api.post(f"{review}/claim", headers=world.officer), done=(409,))
    key = f"approve-{app_id}"
    decided = _call(
        load,
        lambda: api.post(
            f"{review}/decision",
            json={"decision": "approve"},
            headers={"Idempotency-Key": key, **world.officer},
        ),
    )
    with load.lock:
        load.approved[app_id] = decided["uscc"]


_counter = iter(range(1, 10**6))


def run_load(world: World, fault: Callable[[], float]) -> tuple[Load, float]:
    """Run SIZE journeys in WORKERS threads; ``fault`` runs meanwhile and returns the monotonic
    time at which the fault ended."""
    world.refresh()
    load = Load()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(_journey, world, load, next(_counter)) for _ in range(SIZE)]
        time.sleep(1.0)  # let the load get going
        try:
            ended = fault()
        except BaseException:
            load.abort.set()  # the fault could not be injected: stop the clients retrying
            raise
        for future in futures:
            future.result()
    return load, ended


# -- checking -----------------------------------------------------------------------------------


def _pull(world: World) -> None:
    while True:
        answer = world.api.get(
            "/exchange/v1/deliveries",
            params={"after": world.cursor, "limit": 100},
            headers=world.puller,
        )
        answer.raise_for_status()
        events = answer.json()["events"]
        for event in events:
            world.pulled[event["data"]["uscc"]].add(event["id"])
        world.cursor = answer.json()["next"]
        if not events:
            return


def _eventually(check: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def verify(
    world: World, label: str, load: Load, ended: float, *, known_bug_at_identity: str = ""
) -> None:
    """Print and assert the fault's numbers. ``known_bug_at_identity``: the reason of a known,
    intermittent loss at identity's legal persons; when that loss (and nothing else) shows,
    the test is marked xfail with it, and every other invariant still has to hold."""
    api = world.api
    usccs = set(load.approved.values())
    # The first success after the fault: a client's 2xx or a delivery to the webhook department.
    successes = [*load.successes, *world.receiver.times]
    recovery = min((t for t in successes if t >= ended), default=float("nan")) - ended

    drafts_lost = [
        a
        for a in load.drafts
        if api.get(f"/registration/v1/applications/{a}", headers=world.person).status_code != 200
    ]
    register_lost = [
        u for u in usccs if api.get(f"/registration/v1/businesses/{u}").status_code != 200
    ]

    def missing() -> dict[str, set[str]]:
        _pull(world)
        return {
            "identity": {
                u for u in usccs if api.get(f"/identity/v1/legal-persons/{u}").status_code != 200
            },
            "webhook": usccs - set(world.receiver.by_uscc),
            "pull": usccs - set(world.pulled),
        }

    _eventually(lambda: not any(missing().values()))
    events_lost = missing()
    duplicates = {
        "usccs per application": len(load.approved) - len(usccs),
        "webhook events per business": sum(
            len(world.receiver.by_uscc[u]) - 1 for u in usccs if u in world.receiver.by_uscc
        ),
        "pulled events per business": sum(
            len(world.pulled[u]) - 1 for u in usccs if u in world.pulled
        ),
    }
    redelivered = sum(
        world.receiver.deliveries[e] - 1 for u in usccs for e in world.receiver.by_uscc.get(u, ())
    )
    print(
        f"\n[{label}] journeys={SIZE} accepted drafts={len(load.drafts)} "
        f"approvals={len(load.approved)} refused attempts={load.refused}\n"
        f"[{label}] accepted requests lost={len(drafts_lost) + len(register_lost)} "
        f"events lost={sum(len(v) for v in events_lost.values())} "
        f"duplicate effects={sum(duplicates.values())} "
        f"(webhook redeliveries deduplicated={redelivered}) "
        + (
            f"recovery={recovery:.2f}s"
            if recovery == recovery
            else "recovery=n/a (no request or delivery came after the fault's end)"
        )
    )
    assert not drafts_lost, drafts_lost
    assert not register_lost, register_lost
    assert not any(duplicates.values()), duplicates
    assert len(load.approved) == SIZE
    assert not events_lost["webhook"], events_lost
    assert not events_lost["pull"], events_lost
    if events_lost["identity"] and known_bug_at_identity:
        pytest.xfail(f"{len(events_lost['identity'])} lost at identity: {known_bug_at_identity}")
    assert not events_lost["identity"], events_lost


# -- the node's processes -----------------------------------------------------------------------


def _launcher(world: World) -> psutil.Process:
    return psutil.Process(world.node.process.pid)


def _child(world: World, matches: Callable[[psutil.Process], bool]) -> psutil.Process:
    for child in _launcher(world).children():
        try:
            if matches(child):
                return child
        except psutil.NoSuchProcess:
            continue
    raise AssertionError("no such child of the launcher")


def _gone(process: psutil.Process) -> None:
    """Wait until ``process`` has exited: the launcher does not reap the infrastructure it
    started, so a dead one stays a zombie until the node stops."""

    def exited() -> bool:
        try:
            return bool(process.status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return True

    assert _eventually(exited, timeout=30), f"{process.pid} did not exit"


def _service(world: World, module: str) -> psutil.Process:
    return _child(world, lambda p: any(module in part for part in p.cmdline()))


def _wait_service_ready(world: World, name: str) -> None:
    url = world.node.service_url(name) + "/readyz"

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    assert _eventually(ready, timeout=60), f"{name} did not come back"


# -- the faults ---------------------------------------------------------------------------------

# Known bugs, found by this suite and not fixed yet. A test meeting one is marked xfail with
# it, only when it shows and only after every other invariant held.
IDENTITY_STALL = (
    "intermittent, first seen after data-exchange was SIGKILLed and lasting into the next "
    "fault: approved businesses reach data-exchange (webhook and pull) but not identity's "
    "legal persons within 60 s; identity's legal-persons consumer stalls without an error"
)
BROKER_EMPTY = (
    "events the relay had published before the broker restarted empty are gone from it, and "
    "the outbox does not republish them (consumers that had not read them yet, here identity, "
    "never see them); the relay must replay its retained rows when the broker lost its topics"
)
POSTGRES_ZOMBIE = (
    "the launcher neither supervises nor reaps its embedded PostgreSQL: the stopped postmaster "
    "stays a zombie child of `tongban node up` and a server started again on the same data "
    "directory refuses to start (its lock file names the zombie)"
)


@pytest.mark.parametrize(
    ("service", "module"),
    [
        ("registration", "tongban_registration"),
        ("exchange", "tongban_exchange"),
    ],
)
def test_a_service_sigkilled_mid_load_is_restarted_and_loses_nothing(
    world: World, service: str, module: str
) -> None:
    def fault() -> float:
        _service(world, module).send_signal(signal.SIGKILL)
        _wait_service_ready(world, service)  # the launcher restarts it
        return time.monotonic()

    verify(
        world, f"{service} SIGKILL", *run_load(world, fault), known_bug_at_identity=IDENTITY_STALL
    )


def test_postgresql_restarted_mid_load_loses_nothing(world: World) -> None:
    port = int(world.node.env["TONGBAN_EMBEDDED_POSTGRES_PORT"])

    def fault() -> float:
        # Fast shutdown of the embedded server, then the operator starts it again on the same
        # data directory and port (the launcher does not supervise it).
        postmaster = _child(world, lambda p: p.name() == "postgres")
        postmaster.send_signal(signal.SIGINT)
        _gone(postmaster)
        world.postgres = EmbeddedPostgres(
            Path(world.node.state_dir) / "postgres",
            port=port,
            log_path=world.node.state_dir / "postgres2.log",
        )
        try:
            world.postgres.start()
        except RuntimeError as refused:
            pytest.xfail(f"{POSTGRES_ZOMBIE} ({refused})")
        return time.monotonic()

    verify(world, "postgres", *run_load(world, fault), known_bug_at_identity=IDENTITY_STALL)


def test_a_webhook_receiver_down_for_a_while_gets_every_event_once_back(world: World) -> None:
    def fault() -> float:
        world.receiver.down()
        time.sleep(5)
        world.receiver.up()
        return time.monotonic()

    verify(world, "webhook down", *run_load(world, fault), known_bug_at_identity=IDENTITY_STALL)


def test_the_broker_killed_and_restarted_empty_loses_nothing(world: World) -> None:
    port = int(world.node.env["TONGBAN_EMBEDDED_KAFKA_PORT"])

    def fault() -> float:
        # The launcher does not supervise the broker: the operator starts it again, on the same
        # port, with memory storage, so it comes back empty.
        broker = _child(world, lambda p: "--listener-url" in p.cmdline())
        broker.kill()
        _gone(broker)
        world.broker = EmbeddedBroker(port=port, log_path=world.node.state_dir / "broker2.log")
        world.broker.start()
        return time.monotonic()

    verify(world, "broker", *run_load(world, fault), known_bug_at_identity=BROKER_EMPTY)
