"""Ports and child-process plumbing shared by the embedded servers."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from subprocess import Popen
from typing import IO, Any, cast

import psutil

__all__ = [
    "free_port",
    "listens_on",
    "read_tail",
    "spawn",
    "stop_child",
    "wait_for_port",
]

_log = logging.getLogger("tongban.infra")

_PR_SET_PDEATHSIG = 1
# Resolved before any fork: the pre-exec hook must not load libraries in the child.
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_spawners: dict[int, ThreadPoolExecutor] = {}
_spawners_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago (the OS picks it).

    There is an unavoidable race between closing the probe socket and the server binding
    the port; callers that start a server on it should be ready to retry.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` different ports free on ``host`` a moment ago: the probe sockets are all open
    at once, so (unlike calling ``free_port`` ``count`` times) no two can be the same."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until a TCP connect to ``host:port`` succeeds; raise ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{host}:{port} not accepting connections after {timeout}s"
                ) from exc
            time.sleep(0.05)


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself has a TCP socket listening on ``port``.

    Used instead of a bare connect so that another server already on the port is not
    mistaken for the child we just started.
    """
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)


def _tie_to_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child receive ``sig`` when its parent dies (Linux only).

    ``subprocess`` runs it after switching ``user=``/``group=``; a credential change clears the
    setting, so this order is what keeps it.
    """
    if _libc is None:
        return None
    libc = _libc
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would signal us.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _spawner() -> ThreadPoolExecutor:
    # PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so forking from the
    # caller's thread (asyncio.to_thread, a worker thread) would take the server down with it.
    # One thread per process forks every child and lives until interpreter shutdown.
    with _spawners_lock:
        pid = os.getpid()
        if pid not in _spawners:  # also true in a fork()ed child, whose copy has no thread
            _spawners[pid] = ThreadPoolExecutor(1, thread_name_prefix="tongban-infra-spawn")
        return _spawners[pid]


def spawn(args: list[str], *, death_signal: signal.Signals, **popen: Any) -> Popen[bytes]:
    """``subprocess.Popen(args, **popen)`` whose child gets ``death_signal`` if we die.

    The child is signalled when this process exits or is killed, however it ends (Linux only;
    elsewhere it is a plain ``Popen``).
    """
    preexec = _tie_to_parent(death_signal)

    def start() -> Popen[bytes]:
        # Binary mode: callers never pass text=/encoding=. S603: callers pass fixed binaries.
        return cast("Popen[bytes]", Popen(args, preexec_fn=preexec, **popen))  # noqa: S603

    return _spawner().submit(start).result()


def stop_child(proc: Popen[bytes], sig: signal.Signals, timeout: float) -> None:
    """Send ``sig`` to ``proc``, wait up to ``timeout`` seconds, then SIGKILL it."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _log.warning("pid %s ignored %s for %.0fs, killing it", proc.pid, sig.name, timeout)
        proc.kill()
        proc.wait()


def read_tail(sink: IO[bytes], limit: int = 4000) -> str:
    """Return the last ``limit`` bytes written to a log sink, for error messages."""
    # pread leaves the shared file offset alone, which the child may be writing at.
    fd = sink.fileno()
    size = os.fstat(fd).st_size
    return os.pread(fd, limit, max(0, size - limit)).decode("utf-8", "replace")
