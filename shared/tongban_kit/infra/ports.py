"""Ports and child-process plumbing shared by the embedded servers."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import IO

import psutil

__all__ = [
    "free_port",
    "listens_on",
    "read_tail",
    "stop_child",
    "tie_to_parent",
    "wait_for_port",
]

_log = logging.getLogger("tongban.infra")

_PR_SET_PDEATHSIG = 1
# Resolved before any fork: the pre-exec hook must not load libraries in the child.
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago (the OS picks it).

    There is an unavoidable race between closing the probe socket and the server binding
    the port; callers that start a server on it should be ready to retry.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until a TCP connect to ``host:port`` succeeds; raise ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{host}:{port} not accepting connections after {timeout}s")
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


def tie_to_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes the child receive ``sig`` when this process dies.

    Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere returns ``None``. The signal fires when
    the *thread* that spawned the child exits, so start servers from a long-lived thread.
    ``subprocess`` runs the hook after switching ``user=``/``group=``, and a credential change
    would clear the setting, so it survives the switch.
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


def stop_child(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> None:
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
