"""Logging for our programs: JSON lines for machines, readable text for people, request ids in both.

``auto`` picks JSON when stderr is not a terminal (a container, systemd, a pipe) and text on
a terminal. Every line carries the request id of the request being handled ("-" outside one).
Nothing here logs tokens: that is each caller's rule, and jwt_authn logs only reasons.

Lines written per refused request (the guard's ``rejected ...``, and the loggers a program names,
such as the facade's backend errors and unparsable requests) are rate-limited: at most
``PER_REQUEST_LINES_PER_S`` per second per logger,
the next line written saying how many were left out, so a flood of bad tokens cannot make
logging (formatting, the write to stderr, the disk behind it) the bottleneck. Served requests
write no line at the defaults (the access log is off; ``--access-log`` turns it on).

Usage:
    configure_logging("INFO", "auto")
    logging.getLogger("service").info("listening on %s", address)
    # {"time": "2025-01-01T12:00:00.000Z", "level": "INFO", "logger": "service",
    #  "message": "listening on ...", "request_id": "-", "pid": 4242}
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from runtime.request_id import NO_REQUEST_ID, RequestIdFilter

__all__ = [
    "GUARD_LOGGERS",
    "LOG_FORMATS",
    "PER_REQUEST_LINES_PER_S",
    "JsonFormatter",
    "RateLimitFilter",
    "configure_logging",
    "resolve_log_format",
]

LOG_FORMATS: tuple[str, ...] = ("auto", "json", "text")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: The guard's adapters write a line per refused call or request.
GUARD_LOGGERS: tuple[str, ...] = ("jwt_authn.grpc_aio", "jwt_authn.grpc_sync", "jwt_authn.aiohttp")
#: Enough to see what a flood is made of, about a kilobyte a second per logger at most.
PER_REQUEST_LINES_PER_S = 10


class RateLimitFilter(logging.Filter):
    """At most ``per_second`` records a second from each of ``loggers`` (others pass); the first
    one passed after some were dropped says how many."""

    def __init__(
        self,
        per_second: int,
        loggers: tuple[str, ...] = GUARD_LOGGERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._per_second, self._clock = per_second, clock
        self._state = {name: [0, 0, 0] for name in loggers}  # name -> [second, passed in it, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        if (state := self._state.get(record.name)) is None:
            return True
        if (second := int(self._clock())) != state[0]:
            state[0], state[1] = second, 0
        if state[1] >= self._per_second:
            state[2] += 1
            return False
        state[1] += 1
        if state[2]:
            record.msg, record.args = (
                f"{record.getMessage()} ({state[2]} similar lines left out before this one)",
                None,
            )
            state[2] = 0
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request_id, pid[, exception]."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", NO_REQUEST_ID),
            "pid": record.process,
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        # ensure_ascii: a hostile value can never end the line or smuggle control characters.
        return json.dumps(document, ensure_ascii=True)


def resolve_log_format(log_format: str, stream: TextIO) -> str:
    """``json`` or ``text``: ``auto`` becomes text on a terminal, JSON anywhere else."""
    if log_format != "auto":
        return log_format
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure_logging(
    level: str,
    log_format: str = "auto",
    stream: TextIO | None = None,
    *,
    per_request_loggers: tuple[str, ...] = (),
) -> None:
    """Replace the root logger's handlers with one stderr handler in the chosen format; the guard's
    loggers and ``per_request_loggers`` are rate-limited."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    if resolve_log_format(log_format, stream) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    handler.addFilter(RateLimitFilter(PER_REQUEST_LINES_PER_S, (*GUARD_LOGGERS, *per_request_loggers)))
    logging.basicConfig(level=level, handlers=[handler], force=True)
