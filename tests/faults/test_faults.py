"""Faults injected into a whole node while registrations and deliveries run through its gateway.

One node (``tongban node up``, embedded PostgreSQL and broker) is shared by every fault. For
each fault a load of journeys (draft, submit, claim, approve) runs through the gateway in a few
threads; a client retries what failed (5xx, 429, connection errors) as a real client would, so
a refusal is fine as long as the client saw it. Afterwards every accepted (2xx) application and
approval must be in the register, every approved business must have reached identity (legal
persons) and both departments (a webhook receiver and a pull consumer), and no business may have
been applied twice (two different event ids for one business, two USCCs for one application).
Meanwhile a prober calls the routes the journeys do not (login, a pull, look-ups): an outage
may be refused with a 503, never answered with a 500.

Nothing is restarted by hand: the launcher restarts a SIGKILLed service, PostgreSQL (same data
directory and port) and the broker (empty); the relays republish what the broker lost, and
consumers that stall are restarted by the kit.

``make test`` runs a few journeys per fault; ``make faults`` runs many
(``TONGBAN_FAULTS_SIZE``, journeys per fault).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psutil
import pytest

from tongban_kit.infra import free_port
from tongban_kit.testing.callers import Department, Identity, department
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
    refresh: Callable[[], None] = lambda: None


def _department(node: NodeProcess, code: str, scopes: str) -> Department:
    """Enrol a department; its tokens come through the gateway, as a department's would."""
    return department(Identity.of(node, through_gateway=True), code, scopes)


def _healthy(api: httpx.Client) -> Callable[[], bool]:
    """Whether every service answers through the gateway (a breaker could still be open)."""

    def check() -> bool:
        try:
            return all(
                api.get(path).status_code == 200
                # Public and not rate-limited: each service's database and broker reachable.
                for path in ("/identity/readyz", "/registration/readyz", "/exchange/readyz")
            )
        except httpx.HTTPError:
            return False

    return check


def _rate_limited(get: Callable[[], dict[str, str]]) -> dict[str, str]:
    """``get()``, again after a pause while the gateway's credentials limit (one login or token
    a second per address, which the previous fault's prober used up) refuses it."""
    for _ in range(20):
        try:
            return get()
        except (AssertionError, RuntimeError) as refused:
            if "429" not in str(refused):
                raise
            time.sleep(1.0)
    return get()


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
        samr = _department(node, "samr", "identity:assurance registration:review")
        officer = samr.headers
        raised = api.post(
            f"/identity/v1/persons/{signed_up.json()['id']}/assurance/substantial",
            json={"source": "household-register"},
            headers=officer,
        )
        assert raised.status_code == 200, raised.text
        hooked = _department(node, "tax", "exchange:subscribe").headers
        stats = _department(node, "stats", "exchange:subscribe")
        puller = stats.headers
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
            # The previous fault may have left a breaker of the gateway open for a moment.
            _eventually(_healthy(api))
            world.person = _rate_limited(lambda: _login(api))
            world.officer, world.puller = (
                _rate_limited(samr.fresh_headers),
                _rate_limited(stats.fresh_headers),
            )

        world.refresh = refresh
        try:
            yield world
        finally:
            _print_self_healing(node)
            node.stop()
            receiver.down()


def _print_self_healing(node: NodeProcess) -> None:
    """What the launcher restarted and what the services repaired, from their logs."""
    print("\n[self-healing] launcher:")
    for line in node.output.read_text(errors="replace").splitlines():
        if "restarting" in line or " is back" in line:
            print(f"  {line}")
    for log in sorted((node.state_dir / "logs").glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if any(
                word in line for word in ("lost published events", "stalled", "interrupted, re")
            ):
                with contextlib.suppress(ValueError, KeyError):
                    entry = json.loads(line)
                    print(f"  {log.stem}: {entry['time'][11:19]} {entry['message'][:160]}")


# -- the load -----------------------------------------------------------------------------------


@dataclass
class Load:
    """What the clients were told: accepted drafts and approvals, refusals, success times."""

    drafts: list[str] = field(default_factory=list)
    approved: dict[str, str] = field(default_factory=dict)  # application id -> USCC
    refused: int = 0
    successes: list[float] = field(default_factory=list)
    # Every answer a 500 ("the service broke"): an outage must be a 503 (or the gateway's 502).
    server_errors: list[str] = field(default_factory=list)
    probed: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    abort: threading.Event = field(default_factory=threading.Event)

    def ok(self) -> None:
        with self.lock:
            self.successes.append(time.monotonic())

    def fail(self) -> None:
        with self.lock:
            self.refused += 1

    def answered(self, response: httpx.Response) -> None:
        if response.status_code == 500:
            with self.lock:
                self.server_errors.append(
                    f"{response.request.method} {response.request.url.path}: {response.text[:200]}"
                )


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
        load.answered(response)
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
            "/registration/v1/applications",
            json=application(name=name),
            # A retry after an answer lost to the fault must not meet its own name as taken.
            headers={"Idempotency-Key": f"draft-{n}", **world.person},
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


def _probe(world: World, load: Load, finished: threading.Event) -> None:
    """Meanwhile, call the routes the journeys do not (login, a pull, look-ups): during the
    fault each must answer, or refuse with a 503, never a 500."""
    api = httpx.Client(base_url=f"{world.node.gateway}/api", timeout=15)
    login = {"resident_id": PERSON["resident_id"], "password": PERSON["password"]}
    calls: list[Callable[[], httpx.Response]] = [
        lambda: api.post("/identity/v1/login", json=login),
        lambda: api.get(
            "/exchange/v1/deliveries", params={"after": world.cursor}, headers=world.puller
        ),
        lambda: api.get("/identity/v1/legal-persons/91440300MA5FAKE00X"),
        lambda: api.get("/registration/v1/applications", headers=world.person),
    ]
    while not finished.is_set():
        for call in calls:
            try:
                response = call()
            except httpx.HTTPError:
                continue
            load.answered(response)
            with load.lock:
                load.probed[response.status_code] += 1
        time.sleep(0.2)


def run_load(world: World, fault: Callable[[], float]) -> tuple[Load, float]:
    """Run SIZE journeys in WORKERS threads; ``fault`` runs meanwhile and returns the monotonic
    time at which the fault ended."""
    world.refresh()
    load = Load()
    finished = threading.Event()
    with ThreadPoolExecutor(WORKERS + 1) as pool:
        prober = pool.submit(_probe, world, load, finished)
        futures = [pool.submit(_journey, world, load, next(_counter)) for _ in range(SIZE)]
        time.sleep(1.0)  # let the load get going
        try:
            ended = fault()
        except BaseException:
            load.abort.set()  # the fault could not be injected: stop the clients retrying
            raise
        finally:
            for future in futures:
                with contextlib.suppress(BaseException):
                    future.exception()
            finished.set()
        prober.result()
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
        if answer.status_code != 200:
            return  # refused for now (a 503 while the gateway's breaker is open): retried later
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


def verify(world: World, label: str, load: Load, ended: float) -> None:
    """Print and assert the fault's numbers."""
    api = world.api
    usccs = set(load.approved.values())
    # The first success after the fault: a client's 2xx or a delivery to the webhook department.
    successes = [*load.successes, *world.receiver.times]
    recovery = min((t for t in successes if t >= ended), default=float("nan")) - ended

    at_identity: set[str] = set()

    def missing() -> dict[str, set[str]]:
        _pull(world)
        at_identity.update(
            u
            for u in usccs - at_identity
            if api.get(f"/identity/v1/legal-persons/{u}").status_code == 200
        )
        return {
            "identity": usccs - at_identity,
            "webhook": usccs - set(world.receiver.by_uscc),
            "pull": usccs - set(world.pulled),
        }

    _eventually(lambda: not any(missing().values()))
    # Caught up: every accepted approval known to identity and both departments.
    caught_up = max(0.0, time.monotonic() - ended)
    events_lost = missing()
    _eventually(_healthy(api))  # a refusal while a breaker is still open is not a loss
    drafts_lost = [
        a
        for a in load.drafts
        if api.get(f"/registration/v1/applications/{a}", headers=world.person).status_code != 200
    ]
    register_lost = [
        u for u in usccs if api.get(f"/registration/v1/businesses/{u}").status_code != 200
    ]
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
        f"approvals={len(load.approved)} refused attempts={load.refused} "
        f"probes={dict(sorted(load.probed.items()))} 500s={len(load.server_errors)}\n"
        f"[{label}] accepted requests lost={len(drafts_lost) + len(register_lost)} "
        f"events lost={sum(len(v) for v in events_lost.values())} "
        f"duplicate effects={sum(duplicates.values())} "
        f"(webhook redeliveries deduplicated={redelivered}) "
        + (
            f"recovery={recovery:.2f}s"
            if recovery == recovery
            else "recovery=n/a (the load had finished before the fault's end)"
        )
        + f" caught up {caught_up:.1f}s after the fault's end"
    )
    assert not load.server_errors, load.server_errors
    assert not drafts_lost, drafts_lost
    assert not register_lost, register_lost
    assert not any(duplicates.values()), duplicates
    assert len(load.approved) == SIZE
    assert not any(events_lost.values()), events_lost
    assert caught_up < 90, f"caught up only {caught_up:.0f}s after the fault"


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
    """Wait until ``process`` has exited and been reaped (no zombie left)."""

    def exited() -> bool:
        try:
            process.status()  # a zombie still answers: not reaped yet
        except psutil.NoSuchProcess:
            return True
        return False

    assert _eventually(exited, timeout=30), f"{process.pid} was not reaped"


def _replaced(world: World, old: psutil.Process, matches: Callable[[psutil.Process], bool]) -> None:
    """Wait until the launcher has started a new process in place of ``old``."""

    def started() -> bool:
        try:
            return bool(_child(world, matches).pid != old.pid)
        except AssertionError:
            return False

    assert _eventually(started, timeout=60), "the launcher did not start it again"


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

    verify(world, f"{service} SIGKILL", *run_load(world, fault))


def test_postgresql_killed_mid_load_is_restarted_and_loses_nothing(world: World) -> None:
    def postmaster(p: psutil.Process) -> bool:
        return bool(p.name() == "postgres")

    def fault() -> float:
        # SIGKILL, as the OOM killer would: the launcher must reap it and start it again on
        # the same data directory and port, where it recovers from its write-ahead log.
        killed = _child(world, postmaster)
        killed.send_signal(signal.SIGKILL)
        _gone(killed)
        _replaced(world, killed, postmaster)
        _wait_service_ready(world, "registration")  # readiness includes the database
        return time.monotonic()

    verify(world, "postgres SIGKILL", *run_load(world, fault))


def test_a_webhook_receiver_down_for_a_while_gets_every_event_once_back(world: World) -> None:
    def fault() -> float:
        world.receiver.down()
        time.sleep(5)
        world.receiver.up()
        return time.monotonic()

    verify(world, "webhook down", *run_load(world, fault))


def test_the_broker_killed_and_restarted_empty_loses_nothing(world: World) -> None:
    def broker(p: psutil.Process) -> bool:
        return "--listener-url" in p.cmdline()

    def fault() -> float:
        # The launcher restarts it on the same port, with memory storage: it comes back empty,
        # and the relays publish again what it had acknowledged and lost.
        killed = _child(world, broker)
        killed.kill()
        _gone(killed)
        _replaced(world, killed, broker)
        return time.monotonic()

    verify(world, "broker SIGKILL", *run_load(world, fault))
