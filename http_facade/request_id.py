"""``X-Request-Id``: accepted from the client when safe, generated otherwise, returned on every response.

The id is stored on the request under ``REQUEST_ID_KEY`` for handlers (which send it to the
backend as ``x-request-id`` metadata) and set on every response, 404/405 and errors included.

Usage:
    app = web.Application(middlewares=[request_id_middleware])
    request_id = request[REQUEST_ID_KEY]
"""

from __future__ import annotations

import re
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["REQUEST_ID_HEADER", "REQUEST_ID_KEY", "accept_or_generate", "request_id_middleware"]

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_KEY = web.RequestKey("request_id", str)
# Printable ASCII only (it goes into gRPC metadata and log lines), at most 128 characters.
_SAFE = re.compile(r"^[\x20-\x7e]{1,128}$")


def accept_or_generate(value: str | None) -> str:
    """The client's id if it is safe to forward and log, else a fresh uuid4 hex."""
    if value is not None and _SAFE.match(value) and value.strip():
        return value
    return uuid.uuid4().hex


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = accept_or_generate(request.headers.get(REQUEST_ID_HEADER))
    request[REQUEST_ID_KEY] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # the router's 404 and 405 arrive as exceptions
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    response.headers[REQUEST_ID_HEADER] = request_id
    return response
