"""The one error tree of jwt_authn.

Every way a request can fail authentication is an ``AuthnError`` with a short, stable
``reason`` (safe to show to the client) and a ``detail`` (for logs only, never the token).
Each transport adapter maps the three leaves onto its own status codes in one table.

Usage:
    try:
        principal = await authenticator.authenticate(metadata, method)
    except Unauthenticated as err:
        log.info("rejected: %s (%s)", err.reason, err.detail)
"""

from __future__ import annotations

__all__ = [
    "AuthnError",
    "KeySetUnavailable",
    "PermissionDenied",
    "Unauthenticated",
]


class AuthnError(Exception):
    """Base of every authentication or authorization failure."""

    #: RFC 6750 §3.1 error code for the ``WWW-Authenticate`` challenge ("" = none).
    bearer_error: str = "invalid_token"
    #: For observers: the configured issuer the token named, once known (None before).
    issuer: str | None = None
    #: For observers: the ``kid`` the token's header named (the caller's text, uncut), or the
    #: ``key_id`` of the key that verified a cached token; None when not reached.
    key_id: str | None = None
    #: The authorization scheme the request used, ``"Bearer"`` or ``"DPoP"``: the challenge of
    #: that scheme carries the error (RFC 9449 §7.1).
    scheme: str = "Bearer"
    #: A fresh server nonce for the client (``DPoP-Nonce``), with ``use_dpop_nonce``.
    dpop_nonce: str | None = None

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason

    @property
    def description(self) -> str:
        """A short client-facing sentence: the reason, never the token or key material."""
        return self.reason.replace("_", " ")


class Unauthenticated(AuthnError):
    """No credentials, or credentials that are not a valid token (gRPC UNAUTHENTICATED, HTTP 401)."""

    def __init__(self, reason: str, detail: str = "", *, credentials_present: bool = True) -> None:
        super().__init__(reason, detail)
        # RFC 6750 §3.1: a request with no credentials gets a challenge with no error code.
        self.bearer_error = "invalid_token" if credentials_present else ""
        if reason == "malformed_authorization":
            self.bearer_error = "invalid_request"
        elif reason == "use_dpop_nonce":
            self.bearer_error = "use_dpop_nonce"  # RFC 9449 §8
        elif reason.startswith("dpop_"):
            self.bearer_error = "invalid_dpop_proof"  # RFC 9449 §7.1: any problem with the proof


class PermissionDenied(AuthnError):
    """A valid token that lacks a required scope or role (gRPC PERMISSION_DENIED, HTTP 403)."""

    bearer_error = "insufficient_scope"

    def __init__(self, reason: str, detail: str = "", *, required_scopes: tuple[str, ...] = ()) -> None:
        super().__init__(reason, detail)
        self.required_scopes = required_scopes


class KeySetUnavailable(AuthnError):
    """No key set was ever loaded for the token's issuer (gRPC UNAVAILABLE, HTTP 503).

    Clients must not throw away good tokens because our issuer is down, so this is not
    an authentication failure.
    """

    bearer_error = ""
