"""One table per transport from AuthnError to the caller's answer: gRPC status (both gRPC
interceptors) and HTTP status (the aiohttp middleware), RFC 6750 challenges in both.

Usage:
    code, details, trailers = grpc_rejection(error, realm="")
    status, text, headers = http_rejection(error, realm="")
"""

from __future__ import annotations

import grpc

from jwt_authn.authenticator import challenge
from jwt_authn.errors import AuthnError, KeySetUnavailable, PermissionDenied, Unauthenticated

__all__ = ["RETRY_AFTER_S", "grpc_rejection", "http_rejection"]

#: Seconds a client should wait before retrying while the keys are unavailable (RFC 9110 §10.2.3).
RETRY_AFTER_S = 5
_UNAVAILABLE_TEXT = "authentication keys are unavailable, retry later"

_CODES: dict[type[AuthnError], grpc.StatusCode] = {
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    # Our issuer being down is our problem, not the client's token's: retryable, not 401.
    KeySetUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def grpc_rejection(
    error: AuthnError, realm: str = ""
) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """Status code, safe details and trailing metadata for ``error``."""
    code = _CODES.get(type(error), grpc.StatusCode.UNAUTHENTICATED)
    if isinstance(error, KeySetUnavailable):
        return code, _UNAVAILABLE_TEXT, ()
    if isinstance(error, PermissionDenied) and not error.bearer_error:
        return code, error.description, ()  # no token would help (method_not_listed): no challenge
    return code, error.description, (("www-authenticate", challenge(error, realm)),)


_HTTP_STATUSES: dict[type[AuthnError], int] = {
    Unauthenticated: 401,
    PermissionDenied: 403,
    KeySetUnavailable: 503,
}


def http_rejection(error: AuthnError, realm: str = "") -> tuple[int, str, dict[str, str]]:
    """HTTP status, safe text and headers for ``error``: 401 and 403 carry the RFC 6750 §3
    challenge, 503 a ``Retry-After`` (our issuer being down is not the client's fault)."""
    status = _HTTP_STATUSES.get(type(error), 401)
    if isinstance(error, KeySetUnavailable):
        return status, _UNAVAILABLE_TEXT, {"Retry-After": str(RETRY_AFTER_S)}
    if isinstance(error, PermissionDenied) and not error.bearer_error:
        return status, error.description, {}
    return status, error.description, {"WWW-Authenticate": challenge(error, realm)}
