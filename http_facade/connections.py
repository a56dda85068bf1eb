"""Each HTTP connection's budget: a cap on connections, on a request head's bytes and lines, and
on the time a head may take; parser errors answered without quoting the request.

aiohttp bounds one header line (``max_field_size``) and the number of lines (``max_headers``),
but not their product: 128 lines of 16 KiB held by a client that never ends its head cost
megabytes per connection, and it has neither a header-read timeout nor a connection cap. So
``GuardedRequestHandler`` (a ``web.RequestHandler``, aiohttp's public protocol class) counts
the bytes and lines of a request head *before* the parser sees them:

- more than ``max_header_bytes`` or ``max_headers`` lines: a fixed ``431 Request Header Fields
  Too Large`` (RFC 6585 §5), and the connection closes;
- a head whose first byte came ``header_timeout_s`` ago and that is still not complete: a fixed
  ``408 Request Timeout``, and the connection closes (nginx's ``client_header_timeout``);
- past ``max_connections`` open connections, a new one is closed at once (the kernel's accept
  queue holds the rest); exact, whatever the size of an accept batch.

A head is held in one buffer until its empty line arrives, and only then handed to aiohttp's
parser (which would otherwise keep each field of an unfinished head as objects of their own).
From then until ``head_budget_middleware`` sees the handler return, bytes pass straight through
uncounted (the body, a pipelined head): the body cap and aiohttp's own line limits bound those.
A request whose body was not all read closes its connection after the answer (we take no
bodies), so the rest of a body is never counted as the next head.

A request aiohttp cannot parse gets a 400 whose body is a fixed phrase per status: aiohttp's own
text quotes the offending bytes (for a malformed ``Authorization`` header, the token). aiohttp has
no documented hook for parser errors (they never reach middlewares or signals:
https://github.com/aio-libs/aiohttp/issues/3287, https://github.com/aio-libs/aiohttp/issues/9882),
so ``GuardedRequestHandler`` overrides ``handle_error`` of ``web.RequestHandler`` (exported in
``aiohttp.web.__all__``, but its methods are not in aiohttp's reference): no private attribute is
touched, and pyproject pins the aiohttp minor version this is tested with (3.14);
``tests/facade/test_facade_connections.py`` and ``tests/ops/test_ops_header_redaction.py`` pin
the behaviour.

Worst-case memory is ``max_connections`` x (``max_header_bytes`` + aiohttp's per-connection
objects); ``docs/reliability.md`` has the measured figure.

Usage:
    budget = ConnectionBudget(max_connections=2000, max_header_bytes=16384, max_headers=32,
                              header_timeout_s=10)
    factory = guarded_protocol_factory(runner.server, budget, handler_args)
    await loop.create_server(factory, "127.0.0.1", 3000)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = [
    "ConnectionBudget",
    "GuardedRequestHandler",
    "fixed_error_text",
    "guarded_protocol_factory",
    "head_budget_middleware",
]


def fixed_error_text(status: int) -> str:
    """``"400 Bad Request"``: what a client reads instead of aiohttp's quote of its request."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


def _raw_response(status: int) -> bytes:
    """A whole HTTP/1.1 answer with a fixed body, for a head that never reaches the parser."""
    body = fixed_error_text(status).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


_TOO_LARGE = _raw_response(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
_TOO_SLOW = _raw_response(HTTPStatus.REQUEST_TIMEOUT)
#: Why a head was refused, for the log line (never its bytes: they may hold a token).
_REASONS = {
    _TOO_LARGE: "an oversized request head (HTTP 431)",
    _TOO_SLOW: "a request head too slow (HTTP 408)",
}

_log = logging.getLogger("http_facade.server")


def _head_end(window: bytes) -> int | None:
    """Where the empty line that ends a head ends in ``window``, or None. RFC 9112 §2.2 lets a
    server take a bare LF as a line end. (``bytes.find``: a regex costs far more per byte, and a
    flood sends thousands of windows a second.)"""
    ends = [at + len(line_end) for line_end in (b"\n\r\n", b"\n\n") if (at := window.find(line_end)) >= 0]
    return min(ends, default=None)


@dataclass(slots=True)
class ConnectionBudget:
    """The limits, and the count of open connections they share (one per process)."""

    max_connections: int
    max_header_bytes: int
    #: Header fields; the request line and the blank line that ends the head come on top.
    max_headers: int
    header_timeout_s: float
    open_connections: int = field(default=0, init=False)
    #: The most open at once since ``take_peak_connections`` last read it (http_facade.memory).
    peak_connections: int = field(default=0, init=False)

    def opened(self) -> None:
        self.open_connections += 1
        self.peak_connections = max(self.peak_connections, self.open_connections)

    def take_peak_connections(self) -> int:
        """The peak since the last call; the next one starts from the connections open now."""
        peak, self.peak_connections = self.peak_connections, self.open_connections
        return peak

    def note_peak(self, peak: int) -> None:
        """Keep ``peak`` for the next ``take_peak_connections`` (a burst still going on)."""
        self.peak_connections = max(self.peak_connections, peak)


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's request handler with the head budget of the module docstring."""

    def __init__(self, manager: web.Server, budget: ConnectionBudget, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._budget = budget
        self._head = bytearray()
        self._head_lines = 0
        self._awaiting_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._guarded_transport: asyncio.BaseTransport | None = None
        self._over_the_cap = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The exact check: asyncio accepts a batch of connections (up to the listen backlog) and
        # builds all their protocols before any is made, so ``make``'s check alone let a whole
        # batch past the cap. Connections are made one after the other on the loop: here the
        # count is always current.
        if self._budget.open_connections >= self._budget.max_connections:
            self._over_the_cap = True
            transport.close()
            return
        self._budget.opened()
        self._guarded_transport = transport
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._over_the_cap:
            return
        self._budget.open_connections -= 1
        self._cancel_head_timer()
        self._guarded_transport = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._over_the_cap:
            return
        if not self._awaiting_head or not data:
            super().data_received(data)
            return
        if not self._head:
            loop = asyncio.get_running_loop()
            self._head_timer = loop.call_later(self._budget.header_timeout_s, self._refuse, _TOO_SLOW)
        budget = self._budget
        # Only the budget's worth of a chunk is scanned (a flood pushes megabytes at once), and
        # only the head is counted: a body may come in the same chunk.
        room = budget.max_header_bytes - len(self._head)
        tail = bytes(self._head[-3:])
        end = _head_end(tail + data[: room + 1])
        head_part = data if end is None else data[: end - len(tail)]
        if len(head_part) > room:
            self._refuse(_TOO_LARGE)  # before counting a flood's lines
            return
        self._head_lines += head_part.count(b"\n")
        # The request line and the empty line that ends the head are not header fields.
        if self._head_lines > budget.max_headers + 2:
            self._refuse(_TOO_LARGE)
            return
        if end is None:
            # Held here, in one buffer, until the head is whole: the parser would keep every
            # field of an unfinished head as objects of their own, several times its bytes.
            self._head += data
            return
        whole = bytes(self._head) + data
        self._head = bytearray()
        self.head_received()
        super().data_received(whole)

    def head_received(self) -> None:
        """A request's head is complete: stop counting until its response is on its way.

        Called from ``data_received``, and by the middleware for a pipelined request whose head
        came with the one before: bytes held since then (its body, say) go to the parser now."""
        self._awaiting_head = False
        self._cancel_head_timer()
        if self._head:
            held, self._head = bytes(self._head), bytearray()
            super().data_received(held)

    def response_started(self) -> None:
        """The handler is done: the next bytes are the next head, with a fresh budget."""
        self._awaiting_head = True
        self._head_lines = 0

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp builds its own fixed text for 500; every other status would quote ``message``.
        if status != HTTPStatus.INTERNAL_SERVER_ERROR:
            message = fixed_error_text(status)
        return super().handle_error(request, status, exc, message)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, answer: bytes) -> None:
        _log.info("rejected %s", _REASONS[answer])
        self._cancel_head_timer()
        # Not isinstance(asyncio.WriteTransport): uvloop's transports have its methods, not its class.
        transport = cast(asyncio.WriteTransport | None, self._guarded_transport)
        if transport is not None and not transport.is_closing():
            transport.write(answer)
            transport.close()
        self.force_close()


class _Refused(asyncio.Protocol):
    """A connection past the cap: closed as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


def guarded_protocol_factory(
    server: web.Server, budget: ConnectionBudget, handler_args: Mapping[str, Any]
) -> Callable[[], asyncio.BaseProtocol]:
    """A protocol factory for ``loop.create_server``: ``GuardedRequestHandler``s serving ``server``
    (``AppRunner.server``), built with ``handler_args`` (aiohttp's ``RequestHandler`` options)."""
    loop = asyncio.get_running_loop()

    def make() -> asyncio.BaseProtocol:
        # The cheap refusal while the cap is reached; connection_made checks again, exactly (a
        # batch of accepted connections gets its protocols before any is counted). A TLS
        # handshake that fails never counts.
        if budget.open_connections >= budget.max_connections:
            return _Refused()
        return GuardedRequestHandler(server, budget, loop=loop, **handler_args)

    return make


def _end_of_request(
    protocol: GuardedRequestHandler, request: web.Request, response: web.StreamResponse
) -> None:
    """Hand the budget back for the next head, unless part of a body is still to come: its bytes
    must not count as a head, and we take no bodies, so the connection closes after this answer."""
    if request.content.at_eof():
        protocol.response_started()
    else:
        response.force_close()


@web.middleware
async def head_budget_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    protocol = request.protocol
    if not isinstance(protocol, GuardedRequestHandler):  # an app served some other way (tests)
        return await handler(request)
    protocol.head_received()
    try:
        response = await handler(request)
    except web.HTTPException as error:  # the router's 404 and 405 are answers too
        _end_of_request(protocol, request, error)
        raise
    _end_of_request(protocol, request, response)
    return response
