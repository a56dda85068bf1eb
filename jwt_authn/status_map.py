"""The one table from AuthnError to gRPC status, shared by the sync and async interceptors.

Usage:
    code, details, trailers = grpc_rejection(error, realm="")
"""

from __future__ import annotations

import grpc

from jwt_authn.authenticator import challenge
from jwt_authn.errors import AuthnError, KeySetUnavailable, PermissionDenied, Unauthenticated

__all__ = ["grpc_rejection"]

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
        return code, "authentication keys are unavailable, retry later", ()
    return code, error.description, (("www-authenticate", challenge(error, realm)),)
