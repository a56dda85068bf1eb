"""The server span of every RPC, opened *before* the guard runs.

So the authentication verdict lands on it (``service.guard_spans``) and the key fetches an unknown
``kid`` causes are its children; an incoming W3C ``traceparent`` is its parent; a method we do not
serve gets a span too. We wrote this interceptor on the public API instead of using
``opentelemetry-instrumentation-grpc``'s aio server interceptor, which opens its span only when the
handler starts, after every interceptor ran (the guard's verdict and key fetches would fall outside
the RPC's trace, and unknown methods get no span). Off (``runtime.tracing``), it adds nothing.

Usage:
    server = grpc.aio.server(interceptors=[*server_interceptors(), ...])
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import grpc

from jwt_authn.handler_wrapping import Handler, wrap_behavior
from runtime.tracing import current_tracer, tag_request_id
from service.rpc_outcome import ending_wrappers

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

__all__ = ["TracingInterceptor", "server_interceptors"]

#: gRPC codes a server span marks as an error (OpenTelemetry's semantic conventions for RPC).
_SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
#: The name of spans for methods we do not serve: theirs is the caller's text.
_UNKNOWN_METHOD_SPAN = "grpc unknown method"


class _RpcSpan:
    """The server span of one RPC, ended once with the call's status code."""

    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span: Span | None = span

    def end(self, code: grpc.StatusCode) -> None:
        span = self._span
        if span is None:
            return
        from opentelemetry.trace import StatusCode  # noqa: PLC0415

        span.set_attribute("rpc.grpc.status_code", code.value[0])
        tag_request_id(span)
        if code in _SERVER_ERROR_CODES:
            span.set_status(StatusCode.ERROR, code.name)
        span.end()
        self._span = None


def _start_rpc_span(tracer: Tracer, method: str, parent: Context | None) -> tuple[Span, object]:
    """A server span for ``method``, made current in this task; returns it and the context token."""
    from opentelemetry import context, trace  # noqa: PLC0415

    service, _, name = method.lstrip("/").partition("/")
    span = tracer.start_span(
        method.lstrip("/"),
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )
    return span, context.attach(trace.set_span_in_context(span, parent))


class TracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """The outermost interceptor: opens each RPC's server span before the others (the guard) run.

    grpc.aio runs the interceptors and an async handler in the call's own task, so the span made
    current here is current for the guard and the handler, and dies with the call (as the request
    id does). The span ends when the handler does, with its status code.
    """

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    async def intercept_service(  # type: ignore[override]  # None means UNIMPLEMENTED
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        from opentelemetry import propagate  # noqa: PLC0415

        carrier = {
            key: value
            for key, value in handler_call_details.invocation_metadata or ()
            if isinstance(value, str)
        }
        span, _token = _start_rpc_span(self._tracer, handler_call_details.method, propagate.extract(carrier))
        rpc = _RpcSpan(span)
        try:
            handler = await continuation(handler_call_details)
        except BaseException as error:
            rpc.end(
                grpc.StatusCode.CANCELLED
                if isinstance(error, asyncio.CancelledError)
                else grpc.StatusCode.UNKNOWN
            )
            raise
        if handler is None:
            span.update_name(_UNKNOWN_METHOD_SPAN)
            span.set_attributes({"rpc.service": "", "rpc.method": "_OTHER"})
            rpc.end(grpc.StatusCode.UNIMPLEMENTED)
            return None
        unary, streaming = ending_wrappers(lambda: rpc.end)
        return wrap_behavior(handler, unary=unary, streaming=streaming)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
    """``[TracingInterceptor]`` to put first in a grpc.aio server's interceptors; [] when off."""
    tracer = current_tracer()
    return [] if tracer is None else [TracingInterceptor(tracer)]
