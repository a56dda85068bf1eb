"""The server's methods called in this process, through the server's own interceptor chain.

``InProcessChannel`` answers what a ``grpc.aio`` channel's unary-unary multi-callable answers, so
a generated stub works over it unchanged: the reply message, or ``grpc.aio.AioRpcError`` with the
code, details and trailing metadata the server would have sent. No serialization and no socket,
but nothing skipped either (unlike grpc-gateway's in-process ``Register…HandlerServer``, which
bypasses the interceptors and with them authentication): the call runs the very interceptor
objects the ``grpc.aio`` server runs (the observer with its request id and metrics, anonymous
admission, jwt_authn's guard) and then the registered handler, in a task of its own as grpc.aio
runs each RPC, so the principal and request id the chain sets die with the call.

What a socket would add and we mirror: the deadline (``timeout``; DEADLINE_EXCEEDED, the handler
cancelled) and UNIMPLEMENTED for an unknown method. Tracing: the call's server span is
``rpc_server_span``, a child of the caller's current span, instead of the server's tracing
interceptor, which would start a new trace from the (absent) ``traceparent`` metadata.

Usage:
    channel = InProcessChannel(app.chain, app.handlers)   # app: service.server.SecureRouteServer
    stub = secureroute_pb2_grpc.SecureRouteServiceStub(channel)
    reply = await stub.Health(HealthRequest(), timeout=5.0, metadata=[("x-request-id", "abc")])
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, NamedTuple, NoReturn, cast

import grpc

from jwt_authn.handler_wrapping import Handler
from secureroute.tracing import rpc_server_span

__all__ = ["InProcessChannel", "InProcessMethod"]

Metadata = Sequence[tuple[str, str | bytes]]


class _CallDetails(NamedTuple):
    """What grpc.aio gives interceptors (``grpc.HandlerCallDetails``): the method and the metadata."""

    method: str
    invocation_metadata: tuple[tuple[str, str | bytes], ...]


class _Aborted(Exception):
    """Raised by ``_Context.abort`` (grpc.aio raises its own ``AbortError``) to end the handler."""


class _Context:
    """The part of ``grpc.aio.ServicerContext`` that interceptors and handlers use in this process."""

    def __init__(self, metadata: tuple[tuple[str, str | bytes], ...], deadline: float | None) -> None:
        self._metadata = metadata
        self._deadline = deadline
        self._code: grpc.StatusCode | None = None
        self._details: str | None = None
        self.trailing: tuple[tuple[str, str | bytes], ...] = ()
        self.initial: tuple[tuple[str, str | bytes], ...] = ()

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()
    ) -> NoReturn:
        self._code, self._details = code, details
        if trailing_metadata:
            self.trailing = tuple(trailing_metadata)
        raise _Aborted

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def details(self) -> str | None:
        return self._details

    def set_details(self, details: str) -> None:
        self._details = details

    def set_trailing_metadata(self, trailing_metadata: Metadata) -> None:
        self.trailing = tuple(trailing_metadata)

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self.trailing

    async def send_initial_metadata(self, initial_metadata: Metadata) -> None:
        self.initial = tuple(initial_metadata)

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    def peer(self) -> str:
        return "in-process"

    def auth_context(self) -> dict[str, list[bytes]]:
        """No transport, so no TLS and no client certificate. The guard asks when it checks a
        DPoP proof or a certificate-bound token in the handler; with no peer address it trusts no
        forwarded DPoP target here (jwt_authn's aiohttp middleware serves DPoP over HTTP)."""
        return {}

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return self._code is not None


async def _one(request: Any) -> AsyncIterator[Any]:
    """A unary request as the request iterator of a request-streaming behavior (admission's)."""
    yield request


def _error(code: grpc.StatusCode, details: str, context: _Context | None = None) -> grpc.aio.AioRpcError:
    initial = grpc.aio.Metadata(*context.initial) if context is not None else grpc.aio.Metadata()
    trailing = grpc.aio.Metadata(*context.trailing) if context is not None else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(code, initial, trailing, details, None)


class InProcessMethod:
    """One unary-unary method, callable as a ``grpc.aio`` multi-callable is."""

    def __init__(self, channel: InProcessChannel, method: str) -> None:
        self._channel = channel
        self._method = method

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,  # there is always a server ready: ourselves
        **_options: Any,
    ) -> Awaitable[Any]:
        return self._channel.call(self._method, request, timeout, tuple(metadata or ()))


class InProcessChannel:
    """Calls ``handlers`` through ``interceptors`` (outermost first), as a grpc.aio server would."""

    def __init__(
        self,
        interceptors: Sequence[grpc.aio.ServerInterceptor],  # type: ignore[type-arg]
        handlers: Sequence[grpc.GenericRpcHandler[Any, Any]],
    ) -> None:
        self._interceptors = tuple(interceptors)
        self._handlers = tuple(handlers)

    def unary_unary(self, method: str, *_args: Any, **_kwargs: Any) -> InProcessMethod:
        """The multi-callable of ``method`` (the generated stub passes its (de)serializers: unused)."""
        return InProcessMethod(self, method)

    async def close(self, grace: float | None = None) -> None:
        """Nothing to close: there is no connection."""

    def _handler(self, details: grpc.HandlerCallDetails) -> Handler | None:
        for generic in self._handlers:
            handler = generic.service(details)
            if handler is not None:
                return handler
        return None

    async def _intercepted(self, details: grpc.HandlerCallDetails) -> Handler | None:
        """The handler the interceptor chain gives for ``details`` (grpc.aio's own recursion)."""

        async def at(index: int, call_details: grpc.HandlerCallDetails) -> Handler | None:
            if index == len(self._interceptors):
                return self._handler(call_details)
            interceptor = self._interceptors[index]

            def continuation(next_details: grpc.HandlerCallDetails) -> Awaitable[Handler | None]:
                return at(index + 1, next_details)

            result: Handler | None = await interceptor.intercept_service(
                continuation,  # type: ignore[arg-type]  # None means UNIMPLEMENTED, as in grpc.aio
                call_details,
            )
            return result

        return await at(0, details)

    async def call(
        self,
        method: str,
        request: Any,
        timeout_s: float | None,
        metadata: tuple[tuple[str, str | bytes], ...],
    ) -> Any:
        """The reply to ``request``, or ``grpc.aio.AioRpcError``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        context = _Context(metadata, deadline)
        # Its own task, as grpc.aio gives each RPC: what the chain sets in contextvars (the
        # principal, the request id) ends with the call, and the deadline can cancel it.
        task = loop.create_task(self._run(method, request, context))
        expiry = None
        if deadline is not None:

            def expire() -> None:
                if not task.done():
                    context.set_code(grpc.StatusCode.DEADLINE_EXCEEDED)
                    task.cancel()

            expiry = loop.call_at(deadline, expire)
        try:
            return await task
        except asyncio.CancelledError:
            if task.cancelled() and context.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                raise _error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
            raise  # our caller was cancelled (a client gone): the task was cancelled with us
        finally:
            if expiry is not None:
                expiry.cancel()

    async def _run(self, method: str, request: Any, context: _Context) -> Any:
        with rpc_server_span(method) as span:
            try:
                return await self._serve(method, request, context)
            except grpc.aio.AioRpcError as error:
                span.set_code(error.code())
                raise

    async def _serve(self, method: str, request: Any, context: _Context) -> Any:
        details = cast(grpc.HandlerCallDetails, _CallDetails(method, context.invocation_metadata()))
        handler = await self._intercepted(details)
        if handler is None:
            raise _error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        try:
            # grpc-stubs type behaviors for the threaded server; ours are grpc.aio's coroutines.
            unary: Any = handler.unary_unary
            if unary is not None:
                return await unary(request, context)
            streaming: Any = handler.stream_unary
            if streaming is not None:  # admission's shape: it reads the message itself
                return await streaming(_one(request), context)
        except _Aborted:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise _error(code, context.details() or "", context) from None
        except Exception as error:  # what grpc.aio answers for a handler's unhandled exception
            raise _error(grpc.StatusCode.UNKNOWN, f"Unexpected {type(error)}: {error}") from None
        raise _error(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not a unary-response method")
