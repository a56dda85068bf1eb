"""OAuth 2.0 error responses (RFC 6749 §5.2 for the token endpoint, §4.1.2.1 for redirects).

Handlers raise ``OAuthError``; one middleware turns it into the JSON answer, so the status,
``Cache-Control`` and ``WWW-Authenticate`` rules live in one place.

Usage:
    raise OAuthError("invalid_grant", "authorization code expired")
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

__all__ = ["OAuthError", "error_response", "no_store_json"]

#: RFC 6749 §5.2: every error is 400 except invalid_client, which may be 401. We always use 401
#: with a Basic challenge so a client learns which scheme to use (RFC 7235 §3.1 requires the
#: challenge on every 401).
_STATUS: Final[dict[str, int]] = {"invalid_client": 401}
_NO_STORE: Final[dict[str, str]] = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """A protocol error with an RFC 6749 error code and a short, safe description."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    @property
    def status(self) -> int:
        return _STATUS.get(self.error, 400)


def error_response(err: OAuthError) -> web.Response:
    """The JSON error body of RFC 6749 §5.2, never cached."""
    headers = dict(_NO_STORE)
    if err.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="dev_issuer", charset="UTF-8"'
    return web.json_response(
        {"error": err.error, "error_description": err.description}, status=err.status, headers=headers
    )


def no_store_json(body: dict[str, object]) -> web.Response:
    """A 200 JSON answer carrying credentials: never cached (RFC 6749 §5.1)."""
    return web.json_response(body, headers=_NO_STORE)
