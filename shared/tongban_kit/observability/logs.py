"""Structured logs: one JSON object a line, with request id and trace id, written off the loop.

Records go through a queue to a listener thread, so a slow terminal or disk never blocks the
event loop of a service under load. Access-log lines (``write_access``, one per request) skip
the logging machinery when the format is JSON: the loop appends the line's fields to a batch
and a writer thread formats and writes whatever has gathered in one write, a few times a
second; the line is the same JSON object a ``tongban.access`` record would give.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import logging
import logging.handlers
import queue
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

from tongban_kit.observability.context import current_request_id, current_trace

__all__ = ["JsonFormatter", "configure_logging", "write_access"]

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}
_listener: logging.handlers.QueueListener | None = None
access_log = logging.getLogger("tongban.access")


class JsonFormatter(logging.Formatter):
    """Format a record as JSON: time, level, logger, message, ids, and any ``extra`` fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        trace_id = getattr(record, "trace_id", None)
        if request_id:
            entry["request_id"] = request_id
        if trace_id:
            entry["trace_id"] = trace_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and key not in ("request_id", "trace_id"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class _ContextFilter(logging.Filter):
    """Stamp ids from the context on the record, in the thread that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        if not hasattr(record, "trace_id"):
            trace = current_trace()
            record.trace_id = trace.trace_id if trace else None
        return True


class _AccessWriter:
    """Access lines in batches: ``add`` (on the event loop) appends to a deque, the writer
    thread drains it every ``interval_s`` and writes the batch with one ``write``."""

    def __init__(self, service: str, handler: logging.StreamHandler[TextIO]) -> None:
        self.service = service
        self.handler = handler
        self.interval_s = 0.05
        self._pending: collections.deque[tuple[float, str | None, str | None, str, dict[str, Any]]]
        self._pending = collections.deque()
        self._second = -1
        self._prefix = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tongban-access-log", daemon=True)
        self._thread.start()

    def add(self, message: str, fields: dict[str, Any]) -> None:
        trace = current_trace()
        self._pending.append(
            (time.time(), current_request_id(), trace.trace_id if trace else None, message, fields)
        )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._flush()

    def _time(self, created: float) -> str:
        """``created`` as ``JsonFormatter`` writes it; the date and time to the second are
        formatted once a second, not once a line."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        return f"{self._prefix}.{int((created - second) * 1000):03d}+00:00"

    def _flush(self) -> None:
        pending = self._pending
        lines = []
        while pending:
            created, request_id, trace_id, message, fields = pending.popleft()
            entry: dict[str, Any] = {
                "time": self._time(created),
                "level": "info",
                "service": self.service,
                "logger": "tongban.access",
                "message": message,
            }
            if request_id:
                entry["request_id"] = request_id
            if trace_id:
                entry["trace_id"] = trace_id
            entry.update(fields)
            lines.append(json.dumps(entry, default=str, ensure_ascii=False))
        if not lines:
            return
        with self.handler.lock or contextlib.nullcontext():
            try:
                self.handler.stream.write("\n".join(lines) + "\n")
                self.handler.flush()
            except (OSError, ValueError):
                pass  # stderr closed or gone: an access line is not worth failing for


_access_writer: _AccessWriter | None = None


def write_access(message: str, fields: dict[str, Any]) -> None:
    """One access-log line (``tongban.access``, INFO) for the request in the current context:
    batched off the loop when logging is configured as JSON, a plain log record otherwise."""
    writer = _access_writer
    if writer is not None:
        writer.add(message, fields)
    else:
        access_log.info(message, extra=fields)


def _stop_listener() -> None:
    global _listener, _access_writer
    if _access_writer is not None:
        _access_writer.stop()
        _access_writer = None
    if _listener is not None:
        _listener.stop()
        _listener = None


atexit.register(_stop_listener)


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """Route the root logger through a queue to stderr, as JSON (or plain text for humans)."""
    global _listener
    _stop_listener()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    log_queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    queue_handler = logging.handlers.QueueHandler(log_queue)
    queue_handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers = [queue_handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # uvicorn installs its own handlers; send its records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log replaces it
    _listener = logging.handlers.QueueListener(log_queue, handler, respect_handler_level=True)
    _listener.start()
    global _access_writer
    if fmt == "json" and access_log.isEnabledFor(logging.INFO):
        _access_writer = _AccessWriter(service, handler)
