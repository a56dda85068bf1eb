"""The request id of the current request, in a ContextVar every log line can read.

The facade's middleware and the service's interceptor set it; ``RequestIdFilter`` copies it
onto each log record (as ``record.request_id``), so every line logged while a request is being
handled names that request, whichever module logged it. Ids are printable ASCII of at most
128 characters: anything else could forge log lines or break gRPC metadata.

Usage:
    if is_safe_request_id(value):
        request_id_var.set(value)
    handler.addFilter(RequestIdFilter())
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar

__all__ = ["NO_REQUEST_ID", "REQUEST_ID_METADATA", "RequestIdFilter", "is_safe_request_id", "request_id_var"]

#: What log lines outside of any request show.
NO_REQUEST_ID = "-"
#: The gRPC metadata key the facade sends and the service reads (HTTP: ``X-Request-Id``).
REQUEST_ID_METADATA = "x-request-id"

request_id_var: ContextVar[str] = ContextVar("secureroute_request_id", default=NO_REQUEST_ID)

_SAFE = re.compile(r"[\x20-\x7e]{1,128}")


def is_safe_request_id(value: object) -> bool:
    """True for printable ASCII of 1 to 128 characters that is not only spaces."""
    return isinstance(value, str) and _SAFE.fullmatch(value) is not None and not value.isspace()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record that passes (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True
