"""Logging for our programs: JSON lines for machines, readable text for people, request ids in both.

``auto`` picks JSON when stderr is not a terminal (a container, systemd, a pipe) and text on
a terminal. Every line carries the request id of the request being handled ("-" outside one).
Nothing here logs tokens: that is each caller's rule, and jwt_authn logs only reasons.

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
from datetime import UTC, datetime
from typing import TextIO

from secureroute.request_id import NO_REQUEST_ID, RequestIdFilter

__all__ = ["LOG_FORMATS", "JsonFormatter", "configure_logging", "resolve_log_format"]

LOG_FORMATS: tuple[str, ...] = ("auto", "json", "text")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


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


def configure_logging(level: str, log_format: str = "auto", stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers with one stderr handler in the chosen format."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    if resolve_log_format(log_format, stream) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
