"""A whole node in a test, started the way ``make run`` starts it: ``tongban node up``.

Embedded PostgreSQL and broker on free ports, every service on a free port, state in a
directory of the test's own. For whole-node tests (the journey, fuzzing through the gateway,
faults), which talk to it over real sockets only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tongban_kit.infra import free_port

__all__ = ["Department", "NodeProcess", "enrol_department", "node_process"]

_SERVICES = ("IDENTITY", "REGISTRATION", "EXCHANGE", "GATEWAY")


@dataclass
class NodeProcess:
    process: subprocess.Popen[bytes]
    gateway: str
    state_dir: Path
    output: Path
    env: dict[str, str]

    def service_url(self, name: str) -> str:
        """A service's own address (``identity``, ``registration``, ``exchange``, ``gateway``)."""
        return f"http://127.0.0.1:{self.env[f'TONGBAN_{name.upper()}_PORT']}"

    @property
    def database_server(self) -> str:
        return (
            f"postgresql+asyncpg://postgres@127.0.0.1:{self.env['TONGBAN_EMBEDDED_POSTGRES_PORT']}"
        )

    def stop(self, timeout: float = 40) -> int:
        """Ctrl-C, as a terminal would send it to the whole job; the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()


@dataclass
class Department:
    """A department enrolled on a node, getting its tokens by ``private_key_jwt`` (RFC 7523)."""

    code: str
    client_id: str
    key: ec.EllipticCurvePrivateKey
    gateway: str

    def assertion(self) -> dict[str, str]:
        """The form body of a client-credentials token request, with a fresh assertion."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": f"{self.gateway}/api/identity/oauth/token",
            "iat": now,
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": f"{self.code}-1"})
        return {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": token,
        }

    def headers(self, api: httpx.Client) -> dict[str, str]:
        """``Authorization`` with a fresh access token, from ``api`` (based at the gateway's
        ``/api``)."""
        issued = api.post("/identity/oauth/token", data=self.assertion())
        if issued.status_code != 200:
            raise RuntimeError(f"{self.code}: no token: {issued.status_code} {issued.text}")
        return {"Authorization": f"Bearer {issued.json()['access_token']}"}


def enrol_department(node: NodeProcess, code: str, scopes: str) -> Department:
    """Enrol a department with ``tongban departments create``, as an operator does, with a key
    of its own (its JWKS is written to the node's state directory)."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": f"{code}-1", "use": "sig"}
    jwks_file = node.state_dir / f"{code}-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    env = {**node.env, "TONGBAN_IDENTITY_DATABASE_URL": f"{node.database_server}/tongban_identity"}
    enrolled = subprocess.run(  # noqa: S603 - our own interpreter and arguments
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
    if enrolled.returncode != 0:
        raise RuntimeError(f"enrolling {code} failed: {enrolled.stderr}")
    return Department(code, enrolled.stdout.strip(), key, node.gateway)


def _node_env(state_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TONGBAN_", "KAFKA_")) and k != "DATABASE_URL"
    }
    env["TONGBAN_STATE_DIR"] = str(state_dir)
    env["TONGBAN_EMBEDDED_POSTGRES_PORT"] = str(free_port())
    env["TONGBAN_EMBEDDED_KAFKA_PORT"] = str(free_port())
    for service in _SERVICES:
        env[f"TONGBAN_{service}_PORT"] = str(free_port())
    env.update(extra)
    return env


@contextlib.contextmanager
def node_process(
    state_dir: Path, *, ready_timeout: float = 120, env: dict[str, str] | None = None
) -> Iterator[NodeProcess]:
    """Start a node, wait until its gateway is ready, yield it; stop it on the way out."""
    node_env = _node_env(state_dir, env or {})
    output = state_dir / "launcher.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tongban_kit.cli", "node", "up"],
            env=node_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's job would be
        )
    node = NodeProcess(
        process, f"http://127.0.0.1:{node_env['TONGBAN_GATEWAY_PORT']}", state_dir, output, node_env
    )
    try:
        _wait_ready(node, ready_timeout)
        yield node
    finally:
        node.stop()


def _wait_ready(node: NodeProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            raise RuntimeError("the node exited during start-up:\n" + node.output.read_text())
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{node.gateway}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the node was not ready in {timeout}s:\n" + node.output.read_text())
