"""One table per transport from AuthnError to the caller's answer: gRPC status (both gRPC
interceptors) and HTTP status (the aiohttp middleware), with a challenge for each scheme we
accept in both: ``Bearer`` (RFC 6750 §3) and ``DPoP`` (RFC 9449 §7.1, with its ``algs``). The
error goes in the challenge of the scheme the request used; ``use_dpop_nonce`` comes with a
fresh ``DPoP-Nonce`` (HTTP header, gRPC trailer ``dpop-nonce``).

Usage:
    code, details, trailers = grpc_rejection(error, realm="", dpop_algorithms=("ES256",))
    status, text, headers = http_rejection(error, realm="", dpop_algorithms=("ES256",))
"""

from __future__ import annotations

import grpc

from jwt_authn.authenticator import challenge, dpop_challenge
from jwt_authn.errors import AuthnError, KeySetUnavailable, PermissionDenied, Unauthenticated
from jwt_authn.sender import DPOP_NONCE_METADATA

__all__ = ["RETRY_AFTER_S", "challenges", "grpc_rejection", "http_rejection"]

#: Seconds a client should wait before retrying while the keys are unavailable (RFC 9110 §10.2.3).
RETRY_AFTER_S = 5
_UNAVAILABLE_TEXT = "authentication keys are unavailable, retry later"

_CODES: dict[type[AuthnError], grpc.StatusCode] = {
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    # Our issuer being down is our problem, not the client's token's: retryable, not 401.
    KeySetUnavailable: grpc.StatusCode.UNAVAILABLE,
}


def challenges(error: AuthnError, realm: str = "", dpop_algorithms: tuple[str, ...] = ()) -> tuple[str, str]:
    """The ``Bearer`` and ``DPoP`` challenges for ``error``, in that order (both schemes are
    accepted: a certificate-bound or unbound token comes as Bearer). The error is told in the
    challenge of the scheme the request used; the other one is bare."""
    dpop_error = error if error.scheme == "DPoP" else None
    return (
        challenge(None if dpop_error is not None else error, realm),
        dpop_challenge(dpop_error, realm, dpop_algorithms),
    )


def grpc_rejection(
    error: AuthnError, realm: str = "", dpop_algorithms: tuple[str, ...] = ()
) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """Status code, safe details and trailing metadata for ``error``."""
    code = _CODES.get(type(error), grpc.StatusCode.UNAUTHENTICATED)
    if isinstance(error, KeySetUnavailable):
        return code, _UNAVAILABLE_TEXT, ()
    if isinstance(error, PermissionDenied) and not error.bearer_error:
        return code, error.description, ()  # no token would help (method_not_listed): no challenge
    trailers = tuple(("www-authenticate", value) for value in challenges(error, realm, dpop_algorithms))
    if error.dpop_nonce is not None:
        trailers += ((DPOP_NONCE_METADATA, error.dpop_nonce),)
    return code, error.description, trailers


_HTTP_STATUSES: dict[type[AuthnError], int] = {
    Unauthenticated: 401,
    PermissionDenied: 403,
    KeySetUnavailable: 503,
}


def http_rejection(
    error: AuthnError, realm: str = "", dpop_algorithms: tuple[str, ...] = ()
) -> tuple[int, str, list[tuple[str, str]]]:
    """HTTP status, safe text and headers (pairs: ``WWW-Authenticate`` comes once per scheme) for
    ``error``: 401 and 403 carry the challenges, 503 a ``Retry-After`` (our issuer being down is
    not the client's fault)."""
    status = _HTTP_STATUSES.get(type(error), 401)
    if isinstance(error, KeySetUnavailable):
        return status, _UNAVAILABLE_TEXT, [("Retry-After", str(RETRY_AFTER_S))]
    if isinstance(error, PermissionDenied) and not error.bearer_error:
        return status, error.description, []  # no token would help (method_not_listed): no challenge
    headers = [("WWW-Authenticate", value) for value in challenges(error, realm, dpop_algorithms)]
    if error.dpop_nonce is not None:
        headers.append(("DPoP-Nonce", error.dpop_nonce))
    return status, error.description, headers
