"""Admission of anonymous calls: they can never take the room of authenticated calls or probes.

grpc-core's ``maximum_concurrent_rpcs`` counts every open call alike, so 1,000 callers without a
token (health ``Watch`` streams, or calls that never send their request message) used to fill it
and starve everyone. The service's interceptor (``service.call_pipeline``) sorts each call once,
after jwt_authn's guard:

- **authenticated** (a valid token on a non-public method): untouched, the hot path;
- **refused by the guard**: the guard answers at once, *without waiting for the request message*
  (its rejecting handler is request-streaming), and holds no slot;
- **anonymous** (a public method: health Check/Watch, our Health, reflection): runs the copy of
  its handler made here, once per method, which admits the call or answers RESOURCE_EXHAUSTED at
  once. Two lines of defence:

  1. **per client**: at most ``max_per_connection`` anonymous calls at once on one connection and
     ``max_per_address`` from one peer address (all its connections), so one client cannot fill
     a pool whatever it sends (a flood of silent calls included);
  2. **the pools**: ``max_unary`` for unary calls and ``max_streams`` for streaming ones, so many
     clients together (many source addresses) still leave token holders their room, and streams
     (Watch) cannot take the unary room that probes and the facade's /health need.

  The copy is request-streaming, so grpc runs it when the call arrives, before any message: the
  only way to see the peer (``context.peer()``) and to count a call whose client withholds its
  message. A unary request must then arrive within ``message_timeout_s`` (DEADLINE_EXCEEDED
  otherwise, at 1 to 1.1 times it: ``runtime.deadlines``, one sweeping timer instead of one
  per call), so a silent call holds its slot that long at most. The unary copy is one coroutine
  that also records the call's metric sample, and reads the message with ``context.read()`` (no
  request iterator): measured, the request-streaming shape itself costs grpc.aio nothing; what
  cost was the Python around it.

Unknown methods stay UNIMPLEMENTED (the router answers them before we look).

Usage:
    admission = AnonymousAdmission(max_unary=100, max_streams=100, max_per_connection=32,
                                   max_per_address=32, message_timeout_s=1.0)
    handler = admission.admitted(handler, observe)      # once per public method
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from time import perf_counter
from typing import Any

import grpc

from jwt_authn.handler_wrapping import Handler
from runtime.deadlines import Deadlines
from service.rpc_outcome import Observe, failure_code, final_code, timed

__all__ = [
    "CLIENT_LIMIT_DETAILS",
    "POOL_FULL_DETAILS",
    "AnonymousAdmission",
    "CallPool",
    "ClientCounts",
]

#: What a client past its own limit reads (RESOURCE_EXHAUSTED; HTTP 429 at the facade).
CLIENT_LIMIT_DETAILS = "too many anonymous calls from this client, retry later"
_MESSAGE_LATE = "the request message did not arrive in time"
#: What a client reads when every anonymous client together filled the pool.
POOL_FULL_DETAILS = "too many anonymous calls, retry later"


class CallPool:
    """A count of calls at once with a ceiling; ``try_enter`` never waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_enter(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1


class ClientCounts:
    """Anonymous calls at once by connection (grpc's peer, ``ipv4:127.0.0.2:40000``) and by peer
    address (the peer without its port); entries go when their count drops to 0, so the maps hold
    only clients with a call open."""

    def __init__(self, max_per_connection: int, max_per_address: int) -> None:
        self.max_per_connection = max_per_connection
        self.max_per_address = max_per_address
        self.by_connection: dict[str, int] = {}
        self.by_address: dict[str, int] = {}

    def try_enter(self, peer: str, address: str) -> bool:
        on_connection = self.by_connection.get(peer, 0)
        from_address = self.by_address.get(address, 0)
        if on_connection >= self.max_per_connection or from_address >= self.max_per_address:
            return False
        self.by_connection[peer] = on_connection + 1
        self.by_address[address] = from_address + 1
        return True

    def leave(self, peer: str, address: str) -> None:
        for counts, key in ((self.by_connection, peer), (self.by_address, address)):
            left = counts[key] - 1
            if left:
                counts[key] = left
            else:
                del counts[key]


def _address(peer: str) -> str:
    """``ipv4:127.0.0.2:40000`` → ``ipv4:127.0.0.2``, ``ipv6:[::1]:40000`` → ``ipv6:[::1]``;
    a Unix socket's peer (``unix:...``) has no port and is one address."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.rpartition(":")[0]
    return peer


async def _responses(result: Any) -> AsyncIterator[Any]:
    """A streaming handler's responses, whether it yields them or writes them with
    ``context.write()`` and returns a coroutine (as grpc's own aio health servicer does)."""
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    else:
        await result


class AnonymousAdmission:
    """The per-client counts and the two pools; see the module docstring."""

    def __init__(
        self,
        *,
        max_unary: int,
        max_streams: int,
        max_per_connection: int,
        max_per_address: int,
        message_timeout_s: float,
    ) -> None:
        self.unary = CallPool(max_unary)
        self.streams = CallPool(max_streams)
        self.clients = ClientCounts(max_per_connection, max_per_address)
        self.deadlines = Deadlines(message_timeout_s)

    def _refusal(self, pool: CallPool, peer: str, address: str) -> str | None:
        """None when the call has taken its places, else why not (the client's limit first)."""
        if not self.clients.try_enter(peer, address):
            return CLIENT_LIMIT_DETAILS
        if not pool.try_enter():
            self.clients.leave(peer, address)
            return POOL_FULL_DETAILS
        return None

    async def _request(self, context: Any) -> Any:
        """The call's one request message, or an abort: too slow (DEADLINE_EXCEEDED) or none."""
        deadlines = self.deadlines
        task = deadlines.enter()
        try:
            request = await context.read()
        except asyncio.CancelledError:
            if not deadlines.expired(task):
                raise  # the client went away, or the server is stopping
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, _MESSAGE_LATE)
        finally:
            deadlines.leave(task)
        if request is grpc.aio.EOF:  # type: ignore[attr-defined]  # not in grpc-stubs
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request message")
        return request

    def admitted(self, handler: Handler, observe: Observe) -> Handler:
        """``handler`` (a public method's) as a request-streaming handler that admits each call or
        refuses it at once, and tells ``observe`` how it ended; built once per method."""
        options = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.unary_unary, observe), **options)
        behavior: Any = handler.unary_stream or handler.stream_unary or handler.stream_stream
        reads_one = not handler.request_streaming
        pool = self.streams

        async def stream(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            peer = context.peer()
            address = _address(peer)
            if (refusal := self._refusal(pool, peer, address)) is not None:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
            try:
                result = behavior(await self._request(context) if reads_one else requests, context)
                if not handler.response_streaming:
                    yield await result
                    return
                async for response in _responses(result):
                    yield response
            finally:
                pool.leave()
                self.clients.leave(peer, address)

        return timed(grpc.stream_stream_rpc_method_handler(stream, **options), observe)

    def _unary(self, behavior: Any, observe: Observe) -> Any:
        """The unary-unary copy, the hot anonymous path (probes, Health): one coroutine that admits,
        reads the message, runs ``behavior`` and observes the outcome."""
        pool, clients = self.unary, self.clients

        async def unary(requests: AsyncIterator[Any], context: Any) -> Any:
            started = perf_counter()
            try:
                peer = context.peer()
                address = _address(peer)
                if (refusal := self._refusal(pool, peer, address)) is not None:
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
                try:
                    response = await behavior(await self._request(context), context)
                finally:
                    pool.leave()
                    clients.leave(peer, address)
            except BaseException as error:
                observe(failure_code(context, error), perf_counter() - started)
                raise
            observe(final_code(context), perf_counter() - started)
            return response

        return unary
