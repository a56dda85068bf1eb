"""gRPC status → HTTP status, in one table (grpc-gateway's mapping, but CANCELLED is a 503).

Each row also says whether the gRPC details may reach the client. Client errors carry
details meant for the caller ("token expired"); server-side failures often carry internals
(addresses, stack hints) that belong in our logs, so the client gets a fixed sentence.

Usage:
    mapping = GRPC_TO_HTTP[grpc.StatusCode.UNAUTHENTICATED]   # HttpMapping(401, None)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

import grpc

__all__ = ["GRPC_TO_HTTP", "HttpMapping", "http_mapping"]


class HttpMapping(NamedTuple):
    status: int
    #: What the client reads instead of the gRPC details; None shows the details.
    public_message: str | None = None


# https://github.com/grpc-ecosystem/grpc-gateway/blob/main/runtime/errors.go (HTTPStatusFromCode)
GRPC_TO_HTTP: Mapping[grpc.StatusCode, HttpMapping] = MappingProxyType(
    {
        grpc.StatusCode.OK: HttpMapping(200),
        # Not grpc-gateway's 499 ("client closed request"): our own client never cancels a backend
        # call, so CANCELLED means the backend dropped it, e.g. while stopping (grpc/grpc#41785).
        # That is retryable, like UNAVAILABLE: 503 with Retry-After.
        grpc.StatusCode.CANCELLED: HttpMapping(503, "the service dropped the call, retry later"),
        grpc.StatusCode.UNKNOWN: HttpMapping(500, "internal error"),
        grpc.StatusCode.INVALID_ARGUMENT: HttpMapping(400),
        grpc.StatusCode.DEADLINE_EXCEEDED: HttpMapping(504, "the backend did not answer in time"),
        grpc.StatusCode.NOT_FOUND: HttpMapping(404),
        grpc.StatusCode.ALREADY_EXISTS: HttpMapping(409),
        grpc.StatusCode.PERMISSION_DENIED: HttpMapping(403),
        grpc.StatusCode.UNAUTHENTICATED: HttpMapping(401),
        # Our service says this only when it is busy (its metadata cap sits far above the facade's
        # header cap); grpc-core's own details name header sizes, which are not the client's business.
        grpc.StatusCode.RESOURCE_EXHAUSTED: HttpMapping(429, "the service is busy, retry later"),
        grpc.StatusCode.FAILED_PRECONDITION: HttpMapping(400),
        grpc.StatusCode.ABORTED: HttpMapping(409),
        grpc.StatusCode.OUT_OF_RANGE: HttpMapping(400),
        grpc.StatusCode.UNIMPLEMENTED: HttpMapping(501, "not implemented"),
        grpc.StatusCode.INTERNAL: HttpMapping(500, "internal error"),
        grpc.StatusCode.UNAVAILABLE: HttpMapping(503, "the service is unavailable, retry later"),
        grpc.StatusCode.DATA_LOSS: HttpMapping(500, "internal error"),
    }
)


def http_mapping(code: grpc.StatusCode | None) -> HttpMapping:
    """The row for ``code``; a code outside the table (or None) is treated as UNKNOWN."""
    return GRPC_TO_HTTP.get(code or grpc.StatusCode.UNKNOWN, GRPC_TO_HTTP[grpc.StatusCode.UNKNOWN])
