"""Admission of anonymous calls: they can never take the room of authenticated calls or probes.

grpc-core's ``maximum_concurrent_rpcs`` counts every open call alike, so 1,000 callers without a
token (health ``Watch`` streams, or calls that never send their request message) used to fill it
and starve everyone. This interceptor sits between the observer and jwt_authn's guard and sorts
each call once the guard has run:

- **authenticated** (the guard set a principal): passed through untouched, the hot path;
- **refused by the guard** (a non-public method without a valid token): passed through; the
  guard answers at once, *without waiting for the request message* (its rejecting handler is
  request-streaming, see ``jwt_authn.handler_wrapping.rejecting_handler``), and holds no slot;
- **anonymous** (a public method: health Check/Watch, our Health, reflection): admitted into one
  of two pools, ``max_anonymous_rpcs`` for unary calls and ``max_anonymous_streams`` for
  streaming ones, and answered RESOURCE_EXHAUSTED at once when its pool is full. A unary request
  message must arrive within ``request_message_timeout`` (DEADLINE_EXCEEDED otherwise), so an
  anonymous unary call holds its slot for at most that long plus its (tiny) handler. Streams
  (Watch) cannot take the unary pool, so probes and the facade's /health keep room.

Unknown methods stay UNIMPLEMENTED (the guard and the router answer them before we look).

Usage:
    admission = AnonymousAdmission(authenticator, max_unary=100, max_streams=100, message_timeout_s=1.0)
    server = grpc.aio.server(interceptors=[ObservingInterceptor(metrics), admission, AsyncAuthInterceptor(a)])
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc

from jwt_authn import Authenticator
from jwt_authn.handler_wrapping import Behavior, Handler
from jwt_authn.principal import principal_var

__all__ = ["AnonymousAdmission", "CallPool"]


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


async def _first_message(requests: AsyncIterator[Any], timeout_s: float, context: Any) -> Any:
    """The call's one request message, or an abort: too slow (DEADLINE_EXCEEDED) or none at all."""
    try:
        async with asyncio.timeout(timeout_s):
            return await anext(requests)
    except TimeoutError:
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the request message did not arrive in time")
    except StopAsyncIteration:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no request message")


async def _responses(result: Any) -> AsyncIterator[Any]:
    """A streaming handler's responses, whether it yields them or writes them with
    ``context.write()`` and returns a coroutine (as grpc's own aio health servicer does)."""
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    else:
        await result


def _admitted(handler: Handler, pool: CallPool, message_timeout_s: float) -> Handler:
    """``handler`` as a request-streaming handler (so grpc runs it before any message arrives)
    that enters ``pool`` or answers RESOURCE_EXHAUSTED at once. A unary request is then read
    within ``message_timeout_s``."""
    if handler.request_streaming:
        behavior = cast(Behavior, handler.stream_stream or handler.stream_unary)

        async def request_of(requests: AsyncIterator[Any], context: Any) -> Any:
            return requests

    else:
        behavior = cast(Behavior, handler.unary_unary or handler.unary_stream)

        async def request_of(requests: AsyncIterator[Any], context: Any) -> Any:
            return await _first_message(requests, message_timeout_s, context)

    async def enter(context: Any) -> None:
        if not pool.try_enter():
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many anonymous calls, retry later")

    if handler.response_streaming:

        async def stream(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            await enter(context)
            try:
                async for response in _responses(behavior(await request_of(requests, context), context)):
                    yield response
            finally:
                pool.leave()

        return grpc.stream_stream_rpc_method_handler(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def unary(requests: AsyncIterator[Any], context: Any) -> Any:
        await enter(context)
        try:
            return await behavior(await request_of(requests, context), context)
        finally:
            pool.leave()

    return grpc.stream_unary_rpc_method_handler(
        unary,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class AnonymousAdmission(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Bounds calls without a principal; see the module docstring."""

    def __init__(
        self, authenticator: Authenticator, *, max_unary: int, max_streams: int, message_timeout_s: float
    ) -> None:
        self._authenticator = authenticator
        self.unary = CallPool(max_unary)
        self.streams = CallPool(max_streams)
        self._message_timeout_s = message_timeout_s
        # A public method's handler is the same object on every call, so its admitted copy is too.
        self._admitted: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(  # type: ignore[override]  # None means UNIMPLEMENTED
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        # The guard ran in this task: a principal set by it is visible here. A non-public method
        # without one is the guard's rejection: answered at once, it takes no slot (counting it
        # would only turn an expired token's UNAUTHENTICATED into RESOURCE_EXHAUSTED).
        method = handler_call_details.method
        if handler is None or principal_var.get() is not None or not self._authenticator.is_public(method):
            return handler
        pool = self.streams if handler.request_streaming or handler.response_streaming else self.unary
        kept = self._admitted.get(method)
        if kept is not None and kept[0] is handler:
            return kept[1]
        admitted = _admitted(handler, pool, self._message_timeout_s)
        self._admitted[method] = (handler, admitted)  # public methods: a fixed, short list
        return admitted
