"""Response rendering: text or JSON by the Accept header, and gRPC errors as HTTP errors.

Error bodies are short: ``401 Unauthorized: token expired`` or
``{"error": "unauthenticated", "message": "token expired"}``. The credential is never echoed.

Usage:
    return render(request, 200, "Super secret stuff", lambda: {"message": "Super secret stuff"})
    return render_rpc_error(request, err)
    return render_status(request, grpc.StatusCode.UNAUTHENTICATED, "token expired", challenge)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, cast

import grpc
from aiohttp import web

from http_facade.status_map import http_mapping
from jwt_authn import DPOP_NONCE_METADATA

__all__ = ["RETRY_AFTER_S", "render", "render_error", "render_rpc_error", "render_status", "wants_json"]

#: Seconds a client should wait before retrying a 503 (RFC 9110 §10.2.3).
RETRY_AFTER_S = 5
_MAX_DETAIL_CHARS = 200
#: Shortest credential redacted from backend details: a bearer token is far longer (a JWT is
#: 100+ characters; RFC 6749 §10.10 asks for at least 128 bits of entropy, ~22 base64 chars).
_MIN_SECRET_CHARS = 16
_PRINTABLE = re.compile(r"[^\x20-\x7e]+")
#: RFC 9449 §8.1: a nonce is 1*NQCHAR (printable ASCII but the double quote and backslash).
_NONCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,256}")

_log = logging.getLogger(__name__)


def wants_json(request: web.Request) -> bool:
    """True when Accept ranks application/json at least as high as text/plain (and above 0)."""
    accept = request.headers.get("Accept", "")
    if "json" not in accept.lower():
        return False  # most requests: no Accept, or */*
    best = {"json": 0.0, "text": 0.0}
    for media_range in accept.split(","):
        media, *params = (part.strip().lower() for part in media_range.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        kind = {"application/json": "json", "text/plain": "text", "text/*": "text"}.get(media)
        if kind:
            best[kind] = max(best[kind], quality)
    return best["json"] > 0 and best["json"] >= best["text"]


def render(
    request: web.Request, status: int, text: str, document: Callable[[], dict[str, Any]]
) -> web.Response:
    """``text`` as text/plain, or ``document()`` as JSON (built only when asked for)."""
    if wants_json(request):
        return web.json_response(document(), status=status)
    return web.Response(status=status, text=text, content_type="text/plain")


def render_error(
    request: web.Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    reason = HTTPStatus(status).phrase  # every status we answer is registered (no nginx 499)
    response = render(
        request, status, f"{status} {reason}: {message}", lambda: {"error": code, "message": message}
    )
    response.headers.update(headers or {})
    return response


def _credentials(authorization_values: Iterable[str]) -> list[str]:
    """The secret part of each Authorization value (after the scheme), when it could be a secret.

    Shorter strings are left alone: replacing them would garble the message (a value of ``a``
    turned "malformed authorization" into "m[redacted]lformed ...") and hides nothing.
    """
    found = []
    for value in authorization_values:
        scheme, _, rest = value.strip().partition(" ")
        credential = (rest or scheme).strip()
        if len(credential) >= _MIN_SECRET_CHARS:
            found.append(credential)
    return found


def _public_details(details: str | None, authorization_values: Iterable[str]) -> str:
    text = _PRINTABLE.sub(" ", details or "").strip()
    # Belt and braces: jwt_authn never puts the token in details, and nor will we.
    for credential in _credentials(authorization_values):
        text = text.replace(credential, "[redacted]")
    return text[:_MAX_DETAIL_CHARS] or "no details"


def render_rpc_error(request: web.Request, err: grpc.aio.AioRpcError) -> web.Response:
    """The HTTP response for a failed backend call, per the status table."""
    # At runtime this is grpc.aio.Metadata (pairs); grpc-stubs types it as the sync tuple.
    trailers = [
        (key, value)
        for key, value in cast(Iterable[tuple[str, str | bytes]], err.trailing_metadata() or ())
        if isinstance(value, str)
    ]
    # Every challenge the service sent (Bearer and DPoP, RFC 9449 §7.1), as one field: a
    # comma-separated list of challenges is the same as several fields (RFC 9110 §11.6.1).
    challenges = [v for k, v in trailers if k == "www-authenticate" and not _PRINTABLE.search(v)]
    # RFC 9449 §8: the server's nonce, for the client's next proof (use_dpop_nonce).
    nonces = [v for k, v in trailers if k == DPOP_NONCE_METADATA and _NONCE.fullmatch(v)]
    challenge = ", ".join(challenges) if challenges else None
    return render_status(
        request, err.code(), err.details(), challenge, nonces[0] if len(nonces) == 1 else None
    )


def render_status(
    request: web.Request,
    code: grpc.StatusCode | None,
    details: str | None,
    challenge: str | None = None,
    nonce: str | None = None,
) -> web.Response:
    """The HTTP response for a call that ended with ``code``, per the status table: the backend's
    (``render_rpc_error``) or, in the one program, the guard's verdict (``challenge`` is its
    RFC 6750 / RFC 9449 ``WWW-Authenticate``, ``nonce`` its ``DPoP-Nonce``) and the deadline."""
    code = code or grpc.StatusCode.UNKNOWN
    mapping = http_mapping(code)
    credentials = [*request.headers.getall("Authorization", []), *request.headers.getall("DPoP", [])]
    details = _public_details(details, credentials)
    # Details go to our log (they may name backend addresses); the token never does. The
    # guard already logged an authentication failure once, with its reason.
    level = logging.DEBUG if mapping.status in (401, 403) else logging.INFO
    _log.log(level, "backend %s (%s)", code.name, details)
    message = mapping.public_message or details

    headers: dict[str, str] = {}
    if mapping.status in (401, 403):
        if challenge is not None:
            headers["WWW-Authenticate"] = challenge
        elif mapping.status == 401:
            headers["WWW-Authenticate"] = "Bearer"  # RFC 9110 §15.5.2: a 401 must carry a challenge.
        if nonce is not None:
            headers["DPoP-Nonce"] = nonce  # RFC 9449 §8: for the client's next proof
    if mapping.status in (429, 503):
        headers["Retry-After"] = str(RETRY_AFTER_S)  # RFC 6585 §4, RFC 9110 §15.6.4
    return render_error(request, mapping.status, code.name.lower(), message, headers)
