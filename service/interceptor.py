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

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

import grpc

from secureroute.request_id import NO_REQUEST_ID, REQUEST_ID_METADATA, is_safe_request_id, request_id_var
from secureroute.rpc_outcome import Behavior, Ended, Handler, ending_wrappers, wrap_behavior
from service.metrics import ServiceMetrics

__all__ = ["ObservingInterceptor"]


def _request_id(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_METADATA:
            return value if is_safe_request_id(value) else NO_REQUEST_ID
    return NO_REQUEST_ID


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
        unary, streaming = self._wrappers(method)
        wrapped = wrap_behavior(handler, unary=unary, streaming=streaming)
        if kept is not None or len(self._wrapped) < _MAX_WRAPPED_METHODS:
            self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrappers(self, method: str) -> tuple[Callable[[Behavior], Behavior], Callable[[Behavior], Behavior]]:
        observe = self._metrics.observe_rpc

        def start() -> Ended:
            started = perf_counter()
            return lambda code: observe(method, code, perf_counter() - started)

        return ending_wrappers(start)
