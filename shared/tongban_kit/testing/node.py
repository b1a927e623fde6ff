"""A whole node in a test, started the way ``make run`` starts it: ``tongban node up``.

Embedded PostgreSQL and broker on free ports, every service on a free port, state in a
directory of the test's own. For whole-node tests (the journey, fuzzing through the gateway,
faults), which talk to it over real sockets only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tongban_kit.infra import free_ports

__all__ = ["NodeProcess", "node_process"]

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


def _node_env(state_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TONGBAN_", "KAFKA_")) and k != "DATABASE_URL"
    }
    env["TONGBAN_STATE_DIR"] = str(state_dir)
    # Distinct ports: separate free_port() calls can hand out the same one twice.
    ports = free_ports(2 + len(_SERVICES))
    env["TONGBAN_EMBEDDED_POSTGRES_PORT"] = str(ports[0])
    env["TONGBAN_EMBEDDED_KAFKA_PORT"] = str(ports[1])
    for service, port in zip(_SERVICES, ports[2:], strict=True):
        env[f"TONGBAN_{service}_PORT"] = str(port)
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
