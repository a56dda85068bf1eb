"""``X-Request-Id``: accepted from the client when safe, generated otherwise, returned on every response.

The id is stored on the request under ``REQUEST_ID_KEY`` for handlers (which send it to the
backend as ``x-request-id`` metadata), put in ``runtime.request_id.request_id_var`` so every
log line of the request carries it, and set on every response, 404/405 and errors included.

Usage:
    app = web.Application(middlewares=[request_id_middleware])
    request_id = request[REQUEST_ID_KEY]
"""

from __future__ import annotations

import itertools
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler

from runtime.request_id import is_safe_request_id, request_id_var

__all__ = ["REQUEST_ID_HEADER", "REQUEST_ID_KEY", "accept_or_generate", "request_id_middleware"]

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = web.RequestKey("request_id", str)


#: Generated ids: 16 random hex digits per process, then a 16-digit count (32 hex digits, like a
#: uuid4's, unique without a random draw per request: uuid4 cost about 2 µs of each request).
_PREFIX = secrets.token_hex(8)
_COUNT = itertools.count()


def accept_or_generate(value: str | None) -> str:
    """The client's id if it is safe to forward and log, else a fresh one (32 hex digits)."""
    if value is not None and is_safe_request_id(value):
        return value
    return f"{_PREFIX}{next(_COUNT):016x}"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = accept_or_generate(request.headers.get(REQUEST_ID_HEADER))
    request[REQUEST_ID_KEY] = request_id
    # No reset: aiohttp runs each request in its own task, whose context dies with it, and
    # the access log line (written after this middleware returns) should carry the id too.
    request_id_var.set(request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # the router's 404 and 405 arrive as exceptions
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    response.headers[REQUEST_ID_HEADER] = request_id
    return response
