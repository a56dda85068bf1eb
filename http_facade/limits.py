"""The request-body cap, enforced before any route runs.

aiohttp applies ``client_max_size`` only when a handler reads the body, and ours take none,
so on its own the cap never applied (a 10 MB GET body with a valid token got 200). This
middleware answers ``413`` when ``Content-Length`` exceeds the app's ``client_max_size``, and
reads a chunked body (at most cap + 1 bytes, within ``BODY_READ_TIMEOUT_S``) to answer ``413``
when it runs past the cap, ``408`` when it dribbles, ``400`` when its framing is broken. Each
of these answers closes the connection.

Usage:
    app = web.Application(middlewares=[request_id_middleware, body_limit_middleware],
                          client_max_size=64 * 1024)
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler

from http_facade.responses import render_error

__all__ = ["BODY_READ_TIMEOUT_S", "body_limit_middleware"]

#: How long a chunked body may take to arrive: aiohttp's own lingering_time (10 s), the time it
#: spends reading an unread body after answering. A slower body is a slowloris, answered 408.
BODY_READ_TIMEOUT_S = 10.0


def _refuse(request: web.Request, status: int, code: str, message: str) -> web.Response:
    response = render_error(request, status, code, message)
    # The rest of the body is not worth reading: aiohttp drains it for a moment, then closes.
    response.force_close()
    return response


async def _runs_past(request: web.Request, cap: int) -> bool:
    """True when the body holds more than ``cap`` bytes; reads at most ``cap + 1`` of them."""
    remaining = cap + 1
    async with asyncio.timeout(BODY_READ_TIMEOUT_S):
        while remaining > 0:
            chunk = await request.content.read(remaining)
            if not chunk:
                return False
            remaining -= len(chunk)
    return True


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    cap = request.client_max_size
    too_large = f"the request body is larger than {cap} bytes"
    length = request.content_length
    if length is not None:
        if length > cap:
            return _refuse(request, 413, "payload_too_large", too_large)
    elif request.body_exists:  # chunked: its size is known only by reading it
        try:
            if await _runs_past(request, cap):
                return _refuse(request, 413, "payload_too_large", too_large)
        except TimeoutError:
            return _refuse(request, 408, "request_timeout", "the request body arrived too slowly")
        except web.RequestPayloadError:  # bad chunked framing or compression (never quoted back)
            return _refuse(request, 400, "invalid_request", "malformed request body")
    return await handler(request)
