"""``tongban nodes up`` (``make nodes``): a small federation on one machine, without Docker.

The central node 100000 and the regional nodes 440300 (Shenzhen) and 310000 (Shanghai), each a
whole node as ``tongban node up`` starts one, on ports of its own (100000: 8100-8103, 440300:
8200-8203, 310000: 8300-8303, gateway first) and with a broker of its own (9192, 9292, 9392),
sharing one embedded PostgreSQL (55433) with databases per node (``tongban_identity_440300``
…). Each regional node is enrolled in central's directory with a one-time
token (``tongban directory issue-token`` then ``enrol``) as soon as central is up; the three
start side by side. Gateways here refresh the directory every 5 s
(``TONGBAN_GATEWAY_DIRECTORY_REFRESH_S`` to change it), and the command returns once every
gateway's copy lists all three nodes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tongban_kit.infra.postgres import EmbeddedPostgres
from tongban_kit.node import launcher
from tongban_kit.node.launcher import LauncherSettings, Node
from tongban_kit.service import ServiceSpec

__all__ = ["Federation", "NodePlan", "main"]

_SERVICES = ("GATEWAY", "IDENTITY", "REGISTRATION", "EXCHANGE")


@dataclass(frozen=True)
class NodePlan:
    """One node of the local federation: its code, name, service ports and broker port."""

    code: str
    name: str
    ports: dict[str, int]  # GATEWAY, IDENTITY, REGISTRATION, EXCHANGE
    kafka_port: int


def default_plan() -> list[NodePlan]:
    names = {"100000": "中央", "440300": "深圳市", "310000": "上海市"}
    return [
        NodePlan(
            code,
            name,
            {service: 8000 + 100 * (i + 1) + j for j, service in enumerate(_SERVICES)},
            9092 + 100 * (i + 1),
        )
        for i, (code, name) in enumerate(names.items())
    ]


@dataclass
class Federation:
    """Central first, then each regional node enrolled and started; ``stop`` ends all."""

    state_dir: Path
    plan: list[NodePlan] = field(default_factory=default_plan)
    host: str = "127.0.0.1"
    postgres_port: int = 55433
    refresh_s: float = 5.0
    ready_timeout_s: float = 300.0
    nodes: dict[str, Node] = field(default_factory=dict)
    postgres: EmbeddedPostgres | None = None
    _failed: set[str] = field(default_factory=set)

    def gateway(self, code: str) -> str:
        plan = next(p for p in self.plan if p.code == code)
        return f"http://{self.host}:{plan.ports['GATEWAY']}"

    def start(self) -> None:
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.postgres = EmbeddedPostgres(
            self.state_dir / "postgres",
            port=self.postgres_port,
            host=self.host,
            log_path=self.state_dir / "postgres.log",
        )
        self.postgres.start()
        central, *regional = self.plan
        # All three start side by side (most of a start is waiting on subprocesses); the
        # regional nodes enrol as soon as central is up and find themselves in the directory
        # at their gateway's next refresh.
        starting = {
            plan.code: threading.Thread(target=self._start, args=(plan,), name=plan.code)
            for plan in self.plan
        }
        for thread in starting.values():
            thread.start()
        starting[central.code].join()
        if central.code in self._failed:
            for thread in starting.values():
                thread.join()
            raise RuntimeError(f"the central node {central.code} did not start; see its logs")
        for plan in regional:
            token = self._run(central, "issue-token", "--code", plan.code)
            self._run(plan, "enrol", "--central", self.gateway(central.code), "--token", token)
            launcher._say(f"node {plan.code} enrolled in the directory of {central.code}")
        for thread in starting.values():
            thread.join()
        if self._failed:
            failed = ", ".join(sorted(self._failed))
            raise RuntimeError(f"node(s) {failed} did not start; see their logs")
        self._wait_for_directories(started + self.ready_timeout_s)
        launcher._say(
            f"{len(self.plan)} nodes up after {time.monotonic() - started:.1f}s: "
            + ", ".join(f"{p.code} {self.gateway(p.code)}" for p in self.plan)
        )

    def stop_node(self, code: str) -> None:
        node = self.nodes.pop(code, None)
        if node is not None:
            node.stop()

    def stop(self) -> None:
        for code in reversed(list(self.nodes)):
            self.stop_node(code)
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None

    def supervise(self) -> None:
        while not launcher._stopping:
            for node in self.nodes.values():
                node.restart_dead()
            time.sleep(0.5)

    def _env(self, plan: NodePlan) -> dict[str, str]:
        state = self.state_dir / plan.code
        central = self.plan[0]
        if plan.code == central.code:
            # Central's gateway reads the directory from its own identity, up before it.
            directory = f"http://{self.host}:{plan.ports['IDENTITY']}"
        else:
            directory = f"{self.gateway(central.code)}/api/identity"
        env = {f"TONGBAN_{service}_PORT": str(port) for service, port in plan.ports.items()}
        env.update(
            {
                "TONGBAN_NODE_CODE": plan.code,
                "TONGBAN_IDENTITY_NODE_NAME": plan.name,
                "TONGBAN_TOKEN_ISSUER": f"{self.gateway(plan.code)}/api/identity",
                "TONGBAN_GATEWAY_DIRECTORY_URL": f"{directory}/.well-known/tongban-directory.jwt",
                # Services follow the same document to accept visitors' tokens.
                "TONGBAN_DIRECTORY_URL": f"{directory}/.well-known/tongban-directory.jwt",
                # National datasets flow region → central → other regions (store-and-forward).
                "TONGBAN_EXCHANGE_NATIONAL_DIRECTORY_URL": (
                    f"{directory}/.well-known/tongban-directory.jwt"
                ),
                "TONGBAN_EXCHANGE_NATIONAL_REFRESH_S": os.environ.get(
                    "TONGBAN_GATEWAY_DIRECTORY_REFRESH_S", str(self.refresh_s)
                ),
                "TONGBAN_GATEWAY_DIRECTORY_CACHE_FILE": str(state / "directory.jwt"),
                "TONGBAN_GATEWAY_DIRECTORY_REFRESH_S": os.environ.get(
                    "TONGBAN_GATEWAY_DIRECTORY_REFRESH_S", str(self.refresh_s)
                ),
            }
        )
        return env

    def _node(self, plan: NodePlan) -> Node:
        assert self.postgres is not None
        settings = LauncherSettings().model_copy(
            update={
                "state_dir": self.state_dir / plan.code,
                "host": self.host,
                "database_url": self.postgres.url,
                "kafka_bootstrap_servers": None,
                "embedded_kafka_port": plan.kafka_port,
                "ready_timeout_s": self.ready_timeout_s,
            }
        )
        node = Node(settings, env=self._env(plan), database_suffix=f"_{plan.code}")
        node.server_url = self.postgres.url  # known before it starts: enrolment needs it
        return node

    def _start(self, plan: NodePlan) -> None:
        node = self._node(plan)
        self.nodes[plan.code] = node
        try:
            node.start()
        except Exception as exc:
            launcher._say(f"node {plan.code}: {exc}")
            self._failed.add(plan.code)

    def identity_env(self, code: str) -> dict[str, str]:
        """The environment of node ``code``'s identity, for its operator commands."""
        plan = next(p for p in self.plan if p.code == code)
        node = self.nodes.get(code) or self._node(plan)
        identity = next(s for s in _specs() if s.name == "identity")
        return {**node.env, "TONGBAN_IDENTITY_DATABASE_URL": node._database_url(identity)}

    def _run(self, plan: NodePlan, *args: str) -> str:
        """``tongban directory …`` with the node's identity settings; its output."""
        env = self.identity_env(plan.code)
        done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "tongban_kit.cli", "directory", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"tongban directory {args[0]} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def _wait_for_directories(self, deadline: float) -> None:
        """Until every gateway's copy of the directory lists every node."""
        codes = sorted(p.code for p in self.plan)
        for plan in self.plan:
            url = f"{self.gateway(plan.code)}/readyz"
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                        details = json.load(response).get("details", {}).get("directory", {})
                    if sorted(details.get("nodes", [])) == codes:
                        break
                except (urllib.error.URLError, OSError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node {plan.code} never saw the whole directory")
                time.sleep(0.25)


def _specs() -> list[ServiceSpec]:
    from tongban_kit.node.specs import load_specs

    return load_specs()


def main() -> int:
    """Start the three nodes and keep them up until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, launcher._on_signal)
    signal.signal(signal.SIGINT, launcher._on_signal)
    settings = LauncherSettings()
    federation = Federation(settings.state_dir.resolve() / "nodes", host=settings.host)
    code = 0
    try:
        federation.start()
        federation.supervise()
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        launcher._say(f"error: {exc}")
        code = 1
    finally:
        federation.stop()
    return code
