"""The outermost interceptor: the request id for every log line, and one metric sample per RPC.

It runs before jwt_authn's interceptor, so the request id (from ``x-request-id`` metadata) is
already set when an authentication failure is logged; gRPC runs the interceptors and the
handler in the call's own task, so the ContextVar needs no reset. The status code is read from
the context after the handler (``context.abort`` records it), and the time is measured around
the handler, rejected calls included.

Usage:
    server = grpc.aio.server(interceptors=[ObservingInterceptor(metrics), AsyncAuthInterceptor(auth)])
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from time import perf_counter
from typing import Any

import grpc

from jwt_authn.handler_wrapping import Behavior, Handler, wrap_behavior
from secureroute.request_id import NO_REQUEST_ID, REQUEST_ID_METADATA, is_safe_request_id, request_id_var
from service.metrics import ServiceMetrics

__all__ = ["ObservingInterceptor"]


def _request_id(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_METADATA:
            return value if is_safe_request_id(value) else NO_REQUEST_ID
    return NO_REQUEST_ID


def _failure_code(context: grpc.aio.ServicerContext[Any, Any], error: BaseException) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode) and code is not grpc.StatusCode.OK:
        return code  # context.abort() and set_code() record it
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN  # what gRPC answers for an unhandled exception


def _final_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK


#: Most methods whose wrapped handler is kept (a server has a fixed set; the bound is for a
#: catch-all generic handler that answers any name).
_MAX_WRAPPED_METHODS = 1024


class ObservingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Sets the request id and records each call's status and duration."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics
        # method -> (the handler, its wrapped copy). Wrapping is a NamedTuple _replace and four
        # closures, the dearest part of the observer (docs/benchmarks.md, section 2); a registered
        # method's handler is the same object on every call, so its wrapped copy is too. A different
        # handler for the method (jwt_authn's rejecting one, say) is wrapped afresh and replaces the entry.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(  # type: ignore[override]  # None means UNIMPLEMENTED
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        request_id_var.set(_request_id(handler_call_details.invocation_metadata))
        handler = await continuation(handler_call_details)
        if handler is None:
            self._metrics.count_unknown_method()
            return None
        method = handler_call_details.method
        kept = self._wrapped.get(method)
        if kept is not None and kept[0] is handler:
            return kept[1]
        wrapped = wrap_behavior(handler, unary=self._unary(method), streaming=self._streaming(method))
        if kept is not None or len(self._wrapped) < _MAX_WRAPPED_METHODS:
            self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _unary(self, method: str) -> Callable[[Behavior], Behavior]:
        observe = self._metrics.observe_rpc

        def wrap(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started = perf_counter()
                try:
                    response = await behavior(request, context)
                except BaseException as error:
                    observe(method, _failure_code(context, error), perf_counter() - started)
                    raise
                observe(method, _final_code(context), perf_counter() - started)
                return response

            return call

        return wrap

    def _streaming(self, method: str) -> Callable[[Behavior], Behavior]:
        observe = self._metrics.observe_rpc

        def wrap(behavior: Behavior) -> Behavior:
            async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                started = perf_counter()
                try:
                    result = behavior(request, context)
                    if hasattr(result, "__aiter__"):
                        async for response in result:
                            yield response
                    else:  # a handler that writes with context.write() and returns None
                        await result
                except BaseException as error:
                    observe(method, _failure_code(context, error), perf_counter() - started)
                    raise
                observe(method, _final_code(context), perf_counter() - started)

            return call

        return wrap
