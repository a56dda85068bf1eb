"""The facade's spans: a server span per HTTP request, and client spans on the backend channel.

The request span honours an incoming ``traceparent``; the channel's client spans send
``traceparent`` on to the service. In the one program the routes call the service's code
in-process, so the guard's verdict lands on the HTTP span. We wrote the middleware on the public
API instead of using ``opentelemetry-instrumentation-aiohttp-server``, whose middleware works only
after its instrumentor replaced ``aiohttp.web.Application`` process-wide; the client side uses
``opentelemetry-instrumentation-grpc``'s aio client interceptors as they are. Off
(``runtime.tracing``), both add nothing.

Usage:
    app = web.Application(middlewares=[*http_middlewares(), ...])
    channel = grpc.aio.insecure_channel(target, interceptors=channel_interceptors())
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from aiohttp import web

from runtime.tracing import current_tracer, current_tracer_provider, tag_request_id

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["channel_interceptors", "http_middlewares"]

_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def _http_middleware(tracer: Tracer) -> Any:
    from opentelemetry import propagate, trace  # noqa: PLC0415

    def end(span: Span, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        tag_request_id(span)
        if status >= 500:
            span.set_status(trace.StatusCode.ERROR)

    @web.middleware
    async def trace_request(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        method = request.method if request.method in _HTTP_METHODS else "_OTHER"
        # The route's pattern, never the path: a path is the caller's text.
        route = request.match_info.route.resource
        pattern = route.canonical if route is not None else None
        attributes = {"http.request.method": method, "url.scheme": request.scheme}
        if pattern is not None:
            attributes["http.route"] = pattern
        with tracer.start_as_current_span(
            f"{method} {pattern}" if pattern else method,
            context=propagate.extract(request.headers),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await handler(request)
            except web.HTTPException as error:
                end(span, error.status)
                raise
            except BaseException:
                end(span, 500)  # what aiohttp answers for it
                raise
            end(span, response.status)
            return response

    return trace_request


def http_middlewares() -> list[Any]:
    """``[the tracing middleware]`` to put first in an aiohttp app's middlewares; [] when off."""
    tracer = current_tracer()
    return [] if tracer is None else [_http_middleware(tracer)]


def channel_interceptors() -> list[grpc.aio.ClientInterceptor] | None:
    """Client interceptors for a grpc.aio channel (a span per call, ``traceparent`` sent along);
    None when off (grpc's own default)."""
    provider = current_tracer_provider()
    if provider is None:
        return None
    from opentelemetry.instrumentation.grpc import aio_client_interceptors  # noqa: PLC0415

    return list(aio_client_interceptors(tracer_provider=provider))  # type: ignore[no-untyped-call]
