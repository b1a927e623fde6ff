"""``tongban node up``: a whole node on one machine, with nothing installed but Python.

Starts an embedded PostgreSQL and Kafka-protocol broker unless ``DATABASE_URL`` /
``KAFKA_BOOTSTRAP_SERVERS`` point elsewhere, creates and migrates each service's database,
starts every service (each runs its outbox relay and consumers), waits until all are ready,
and on Ctrl-C or SIGTERM stops everything, leaving no process behind.

While the node runs, the launcher supervises what it started: a service that dies is started
again, and so is the embedded PostgreSQL (same data directory and port; it recovers from its
write-ahead log) or broker (same port; memory storage, so it comes back empty and the outbox
relays publish their retained events again). Each may be restarted at most 5 times a minute.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from tongban_kit.db.migrations import ensure_database, upgrade
from tongban_kit.infra.broker import EmbeddedBroker
from tongban_kit.infra.postgres import EmbeddedPostgres
from tongban_kit.node.specs import load_specs
from tongban_kit.service import ServiceSpec

__all__ = ["LauncherSettings", "Node", "main"]


class LauncherSettings(BaseSettings):
    """What the launcher itself reads (the services read their own settings)."""

    model_config = SettingsConfigDict(env_prefix="TONGBAN_", extra="ignore")

    state_dir: Path = Field(default=Path(".state"), description="Where a local node keeps data.")
    host: str = Field(default="127.0.0.1", description="Interface local services listen on.")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "TONGBAN_DATABASE_URL"),
        description="A PostgreSQL server for all services (one database each); unset: embedded.",
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "TONGBAN_KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers; unset: the embedded broker.",
    )
    embedded_postgres_port: int = Field(default=55432, description="Embedded PostgreSQL port.")
    embedded_kafka_port: int = Field(default=9092, description="Embedded broker port.")
    ready_timeout_s: float = Field(default=90.0, description="How long start-up may take.")


def _say(message: str) -> None:
    print(f"tongban: {message}", flush=True)


@dataclass
class _Child:
    spec: ServiceSpec
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None


class Node:
    """One node's processes. ``start`` brings it up; ``stop`` takes all of it down."""

    def __init__(
        self,
        settings: LauncherSettings,
        *,
        env: dict[str, str] | None = None,
        port_offset: int = 0,
        database_suffix: str = "",
    ) -> None:
        """``env`` is added to every service's environment (several nodes on one machine set
        ``TONGBAN_NODE_CODE`` there), ``port_offset`` moves every service port, and
        ``database_suffix`` names each service's database apart on a shared server."""
        self.settings = settings
        self.env = {**os.environ, **(env or {})}
        self.port_offset = port_offset
        self.database_suffix = database_suffix
        self.state = settings.state_dir.resolve()
        self.logs = self.state / "logs"
        self.postgres: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.children: list[_Child] = []
        self._restarts: dict[str, list[float]] = {}
        self.server_url = ""
        self.bootstrap = ""

    def start(self) -> None:
        started = time.monotonic()
        self.logs.mkdir(parents=True, exist_ok=True)
        specs = load_specs()
        steps = 4 + len(specs)
        step = 0

        def progress(text: str) -> None:
            nonlocal step
            step += 1
            _say(f"[{step}/{steps}] {text}")

        if self.settings.database_url:
            self.server_url = self.settings.database_url
            progress(f"PostgreSQL: using {make_url(self.server_url).render_as_string()}")
        else:
            progress(
                f"PostgreSQL: starting embedded server on port "
                f"{self.settings.embedded_postgres_port}"
            )
            self.postgres = EmbeddedPostgres(
                self.state / "postgres",
                port=self.settings.embedded_postgres_port,
                host=self.settings.host,
                log_path=self.logs / "postgres.log",
            )
            self.postgres.start()
            self.server_url = self.postgres.url
        if self.settings.kafka_bootstrap_servers:
            self.bootstrap = self.settings.kafka_bootstrap_servers
            progress(f"Kafka: using {self.bootstrap}")
        else:
            progress(f"Kafka: starting embedded broker on port {self.settings.embedded_kafka_port}")
            self.broker = EmbeddedBroker(
                port=self.settings.embedded_kafka_port,
                host=self.settings.host,
                log_path=self.logs / "broker.log",
            )
            self.broker.start()
            self.bootstrap = self.broker.bootstrap_servers

        progress("databases: creating and migrating")
        urls = {}
        for spec in specs:
            if spec.database and spec.migrations:
                url = self._database_url(spec)
                urls[spec.name] = url
                with _MIGRATING:  # alembic keeps global state: one migration at a time
                    created = asyncio.run(ensure_database(url))
                    upgrade(spec.migrations, url)
                name = make_url(url).database
                _say(f"      {name}: {'created, ' if created else ''}migrated")

        ports = {spec.name: self._port(spec) for spec in specs}
        node_env = self._token_env(ports)
        if "identity" in ports:
            node_env["TONGBAN_IDENTITY_URL"] = f"http://{self.settings.host}:{ports['identity']}"
        if "exchange" in ports:  # services reading other departments' records
            node_env["TONGBAN_EXCHANGE_URL"] = f"http://{self.settings.host}:{ports['exchange']}"
        accounts = self._enrol_service_accounts(specs, urls)
        progress("services: starting")
        for spec in specs:
            env = dict(self.env)
            env.update(node_env)
            env.update(
                {
                    "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                    f"{spec.env_prefix}HOST": self.settings.host,
                    f"{spec.env_prefix}PORT": str(ports[spec.name]),
                }
            )
            if spec.name in urls:
                env[f"{spec.env_prefix}DATABASE_URL"] = urls[spec.name]
            if spec.name in accounts:
                client_id, key_file = accounts[spec.name]
                env[f"{spec.env_prefix}CLIENT_ID"] = client_id
                env[f"{spec.env_prefix}CLIENT_KEY_FILE"] = str(key_file)
            # The gateway finds each service at TONGBAN_GATEWAY_<SERVICE>_URL.
            for other in specs:
                env[f"TONGBAN_GATEWAY_{other.name.upper()}_URL"] = (
                    f"http://{self.settings.host}:{ports[other.name]}"
                )
            child = _Child(spec, ports[spec.name], env, self.logs / f"{spec.name}.log")
            self._spawn(child)
            self.children.append(child)

        deadline = started + self.settings.ready_timeout_s
        for child in self.children:
            progress(
                f"{child.spec.name}: waiting for http://{self.settings.host}:{child.port}/readyz"
            )
            self._wait_ready(child, deadline)
        gateway = next((c for c in self.children if c.spec.name == "gateway"), None)
        _say(
            f"node {self.env.get('TONGBAN_NODE_CODE', '440300')} is up after "
            f"{time.monotonic() - started:.1f}s"
        )
        if gateway:
            _say(
                f"gateway: http://{self.settings.host}:{gateway.port}  "
                f"(docs at /docs, readiness at /readyz)"
            )
        _say(f"logs: {self.logs}  ·  Ctrl-C stops the node")

    def supervise(self) -> None:
        """Restart a service, the embedded PostgreSQL or the embedded broker when it dies (each
        at most 5 times a minute) until asked to stop."""
        while not _stopping:
            self.restart_dead()
            time.sleep(0.5)

    def restart_dead(self) -> None:
        """Restart whatever of this node has exited; ``RuntimeError`` if one keeps failing."""
        # Polling reaps a dead server, so none stays a zombie holding its lock file.
        if self.postgres is not None and not self.postgres.is_running():
            self._allow_restart("postgres", self.logs / "postgres.log")
            _say("PostgreSQL exited; restarting it on the same data directory and port")
            self.postgres.stop()  # closes its log, ends backends left behind
            self._restart_infra("PostgreSQL", self.postgres.start)
        if self.broker is not None and not self.broker.is_running():
            self._allow_restart("broker", self.logs / "broker.log")
            _say("the broker exited; restarting it (empty) on the same port")
            self.broker.stop()
            self._restart_infra("the broker", self.broker.start)
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                code = child.process.returncode
                self._allow_restart(child.spec.name, child.log_path)
                _say(f"{child.spec.name} exited with {code}; restarting")
                self._spawn(child)

    def _allow_restart(self, name: str, log: Path) -> None:
        now = time.monotonic()
        recent = [t for t in self._restarts.get(name, []) if now - t < 60] + [now]
        self._restarts[name] = recent
        if len(recent) > 5:
            raise RuntimeError(f"{name} keeps failing; see {log}")

    @staticmethod
    def _restart_infra(name: str, start: Callable[[], None]) -> None:
        try:
            start()
        except Exception as exc:  # tried again on the next round, within the restart limit
            _say(f"{name} did not start again: {exc}")
        else:
            _say(f"{name} is back")

    def stop(self) -> None:
        _say("stopping the node")
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            if child.log:
                child.log.close()
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.stop()
        _say("stopped; nothing left running")

    def _enrol_service_accounts(
        self, specs: list[ServiceSpec], urls: dict[str, str]
    ) -> dict[str, tuple[str, Path]]:
        """Each service naming ``client_scopes`` becomes an identity client (``svc-<name>``)
        with a key of its own, kept in the state dir; returns name -> (client id, key file).

        Run on every start (``tongban departments service-account``), so a changed scope list
        or a replaced key file takes effect at the next start.
        """
        wanting = [spec for spec in specs if spec.client_scopes]
        owner = next((spec for spec in specs if "departments" in spec.commands), None)
        if not wanting or owner is None or owner.name not in urls:
            return {}
        accounts = {}
        for spec in wanting:
            key_file = self.state / "clients" / f"{spec.name}.pem"
            command = [
                sys.executable,
                *("-m", "tongban_kit.cli", "departments", "service-account"),
                *("--service", spec.name, "--scopes", " ".join(spec.client_scopes)),
                *("--key-file", str(key_file)),
            ]
            env = {**self.env, f"{owner.env_prefix}DATABASE_URL": urls[owner.name]}
            done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
                command, env=env, capture_output=True, text=True, timeout=120, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(
                    f"enrolling {spec.name}'s service account failed: {done.stderr.strip()}"
                )
            accounts[spec.name] = (done.stdout.strip(), key_file)
            _say(f"      {spec.name}: service account {accounts[spec.name][0]}")
        return accounts

    def _token_env(self, ports: dict[str, int]) -> dict[str, str]:
        """Where services find identity's keys, and the issuer its tokens name (the gateway's
        public path to identity), unless the environment says otherwise."""
        env = {}
        host = self.settings.host
        if "identity" in ports and "TONGBAN_JWKS_URL" not in self.env:
            env["TONGBAN_JWKS_URL"] = f"http://{host}:{ports['identity']}/.well-known/jwks.json"
        if "gateway" in ports and "TONGBAN_TOKEN_ISSUER" not in self.env:
            env["TONGBAN_TOKEN_ISSUER"] = f"http://{host}:{ports['gateway']}/api/identity"
        return env

    def _database_url(self, spec: ServiceSpec) -> str:
        url = make_url(self.server_url).set(
            drivername="postgresql+asyncpg", database=f"{spec.database}{self.database_suffix}"
        )
        return url.render_as_string(hide_password=False)

    def _port(self, spec: ServiceSpec) -> int:
        return int(self.env.get(f"{spec.env_prefix}PORT", spec.default_port)) + self.port_offset

    def _spawn(self, child: _Child) -> None:
        if child.log is None:
            child.log = child.log_path.open("ab")
        host = self.settings.host
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            child.spec.app,
            "--factory",
            "--host",
            host,
            "--port",
            str(child.port),
            "--no-access-log",
            "--no-server-header",
            "--timeout-graceful-shutdown",
            "10",
        ]
        child.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command,
            env=child.env,
            stdout=child.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def _wait_ready(self, child: _Child, deadline: float) -> None:
        url = f"http://{self.settings.host}:{child.port}/readyz"
        while time.monotonic() < deadline:
            if _stopping:
                raise KeyboardInterrupt
            assert child.process is not None
            if child.process.poll() is not None:
                tail = child.log_path.read_text(errors="replace").splitlines()[-20:]
                raise RuntimeError(
                    f"{child.spec.name} exited during start-up; last log lines:\n" + "\n".join(tail)
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{child.spec.name} was not ready in time; see {child.log_path}")


_stopping = False
# Several nodes may start side by side in one process (``tongban nodes up``).
_MIGRATING = threading.Lock()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _stopping
    _stopping = True


def main() -> int:
    """Start the node and keep it up until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    node = Node(LauncherSettings())
    code = 0
    try:
        node.start()
        node.supervise()
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        _say(f"error: {exc}")
        code = 1
    finally:
        node.stop()
    return code
