"""OpenTelemetry traces for every program: off unless configured, and then nothing on the request path.

With the ``[otel]`` extra installed and an exporter asked for by the standard variables
(``OTEL_TRACES_EXPORTER=otlp|console``, or an ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``),
``configure_tracing`` sets up an SDK tracer provider (batching, sampler, resource and exporter read
from ``OTEL_*``). Then:

- ``server_interceptors()``: a server span per RPC, opened *before* the guard runs, so the
  authentication verdict lands on it and the key fetches an unknown ``kid`` causes are its children;
  an incoming W3C ``traceparent`` is its parent.
- ``traced_observer(metrics)``: the guard's observer, also turning jwt_authn's verdicts into
  attributes of the current span (``jwt_authn.result``, ``.reason``, ``.issuer``, ``.key_id``,
  ``enduser.id`` = ``sub``; never the token or other claims) and each key refresh, discovery and
  JWKS fetch into a span.
- ``http_middlewares()``: a server span per HTTP request, honouring ``traceparent``.
- ``channel_interceptors()``: the facade's client spans, which send ``traceparent`` to the service.
  (The one program's HTTP routes call the service's code in-process: the guard's verdict lands on
  the HTTP span.)

Off (the default), each returns the program's own object unchanged or nothing to add, and no
OpenTelemetry module is imported. We wrote the server interceptor and the middleware on the public
API instead of using ``opentelemetry-instrumentation-grpc``'s aio server interceptor, which opens
its span only when the handler starts, after every interceptor ran (the guard's verdict and key
fetches would fall outside the RPC's trace, and unknown methods get no span), and
``opentelemetry-instrumentation-aiohttp-server``, whose middleware works only after its
instrumentor replaced ``aiohttp.web.Application`` process-wide. The client side uses
``opentelemetry-instrumentation-grpc``'s aio client interceptors as they are.

Usage:
    configure_tracing("secureroute-service")        # once per process (run_program does it)
    server = grpc.aio.server(interceptors=[*server_interceptors(), ...])
    authenticator = Authenticator(config, observer=traced_observer(metrics))
    shutdown_tracing()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from aiohttp import web

from jwt_authn import AuthnObserver, AuthnVerdict
from secureroute.request_id import NO_REQUEST_ID, request_id_var
from secureroute.rpc_outcome import Handler, ending_wrappers, wrap_behavior
from secureroute.settings import SettingsError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "channel_interceptors",
    "configure_tracing",
    "disable_tracing",
    "enable_tracing",
    "http_middlewares",
    "server_interceptors",
    "shutdown_tracing",
    "traced_observer",
    "tracing_enabled",
]

_log = logging.getLogger(__name__)

#: The instrumentation scope of every span we make.
TRACER_NAME = "secureroute"

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
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
_TRUE = frozenset({"true", "1", "yes", "on"})


class _State:
    """The process's tracing: None everywhere when off."""

    tracer: Tracer | None = None
    provider: TracerProvider | None = None
    #: Set by ``configure_tracing`` only: the provider it made, to flush at exit.
    owned: bool = False


_state = _State()


# Set-up ------------------------------------------------------------------------------------------


def _exporter_name(environ: Mapping[str, str]) -> str | None:
    """The exporter the variables ask for, or None when tracing stays off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return None
    name = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if name == "none":
        return None
    if name:
        if name not in ("otlp", "console"):
            raise SettingsError(f"OTEL_TRACES_EXPORTER: {name!r} is not one of otlp, console, none")
        return name
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return "otlp" if any(environ.get(variable, "").strip() for variable in endpoints) else None


def _otlp_exporter(environ: Mapping[str, str]) -> SpanExporter:
    # The Python SDK's own default is gRPC (port 4317); both exporters read their endpoint,
    # headers, certificates, compression and timeout from OTEL_EXPORTER_OTLP_* themselves.
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        return OTLPSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as OTLPHTTPSpanExporter,
        )

        return OTLPHTTPSpanExporter()
    raise SettingsError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not one of grpc, http/protobuf")


def configure_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on from the ``OTEL_*`` variables; True when it is on.

    Off when no exporter is asked for, or when the ``[otel]`` extra is missing (then one warning,
    if the variables ask for traces). Raises ``SettingsError`` for a value it cannot use, and for
    ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST``: recorded request headers could
    hold the bearer token.
    """
    environ = os.environ if environ is None else environ
    if _state.tracer is not None:
        return True
    exporter_name = _exporter_name(environ)
    if exporter_name is None:
        return False
    if environ.get("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"):
        raise SettingsError(
            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST: request headers are never"
            " recorded (the bearer token is one); unset it"
        )
    try:
        from opentelemetry import trace  # noqa: PLC0415
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter  # noqa: PLC0415
    except ImportError:
        _log.warning("OTEL_* variables ask for traces, but the [otel] extra is not installed: tracing is off")
        return False
    exporter = ConsoleSpanExporter() if exporter_name == "console" else _otlp_exporter(environ)
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    # Sampler (OTEL_TRACES_SAMPLER), span limits and the batch queue (OTEL_BSP_*, 2048 spans by
    # default: spans past it are dropped, never queued without bound) come from the variables.
    provider = TracerProvider(resource=Resource.create({} if named else {SERVICE_NAME: service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    enable_tracing(provider)
    _state.owned = True
    _log.info(
        "tracing on: %s exporter, service %s", exporter_name, provider.resource.attributes[SERVICE_NAME]
    )
    return True


def enable_tracing(provider: TracerProvider) -> None:
    """Trace with ``provider`` from now on (tests: one with an in-memory exporter). Parts built
    before keep what they were built with."""
    _state.provider, _state.tracer = provider, provider.get_tracer(TRACER_NAME)


def disable_tracing() -> None:
    """Back to off, for parts built from now on (tests)."""
    _state.provider = _state.tracer = None
    _state.owned = False


def shutdown_tracing() -> None:
    """Flush and stop the exporter ``configure_tracing`` made (at the program's end)."""
    provider, owned = _state.provider, _state.owned
    disable_tracing()
    if provider is not None and owned:
        provider.shutdown()


def tracing_enabled() -> bool:
    return _state.tracer is not None


# The RPC server span -------------------------------------------------------------------------------


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
        request_id = request_id_var.get()
        if request_id != NO_REQUEST_ID:
            span.set_attribute("secureroute.request_id", request_id)
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
    tracer = _state.tracer
    return [] if tracer is None else [TracingInterceptor(tracer)]


# The guard's observer ------------------------------------------------------------------------------


class _TracingObserver:
    """The program's observer (metrics), plus jwt_authn's verdicts and key fetches as spans."""

    def __init__(self, inner: AuthnObserver, tracer: Tracer) -> None:
        self._inner, self._tracer = inner, tracer

    def on_outcome(self, reason: str) -> None:
        self._inner.on_outcome(reason)

    def on_verdict(self, verdict: AuthnVerdict) -> None:
        from opentelemetry import trace  # noqa: PLC0415

        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes = {"jwt_authn.result": verdict.result, "jwt_authn.reason": verdict.reason}
        if verdict.issuer is not None:
            attributes["jwt_authn.issuer"] = verdict.issuer
        if verdict.key_id is not None:
            attributes["jwt_authn.key_id"] = verdict.key_id
        if verdict.subject is not None:
            attributes["enduser.id"] = verdict.subject
        span.set_attributes(attributes)

    @contextlib.contextmanager
    def key_fetch(self, issuer: str, step: str, url: str) -> Iterator[None]:
        from opentelemetry import trace  # noqa: PLC0415

        refresh = step == "refresh"
        with self._tracer.start_as_current_span(
            f"jwt_authn {step}",
            kind=trace.SpanKind.INTERNAL if refresh else trace.SpanKind.CLIENT,
            attributes={"jwt_authn.issuer": issuer, "jwt_authn.source" if refresh else "url.full": url},
            # The error's text is jwt_authn's KeySourceError: safe to log, and it says why.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except Exception as error:
                span.set_status(trace.StatusCode.ERROR, str(error)[:200])
                raise


def traced_observer(observer: AuthnObserver) -> AuthnObserver:
    """``observer``, also making spans of the guard's verdicts and key fetches; itself when off."""
    tracer = _state.tracer
    return observer if tracer is None else _TracingObserver(observer, tracer)


# HTTP ------------------------------------------------------------------------------------------------


def _http_middleware(tracer: Tracer) -> Any:
    from opentelemetry import propagate, trace  # noqa: PLC0415

    def end(span: Span, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        request_id = request_id_var.get()
        if request_id != NO_REQUEST_ID:
            span.set_attribute("secureroute.request_id", request_id)
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
    tracer = _state.tracer
    return [] if tracer is None else [_http_middleware(tracer)]


def channel_interceptors() -> list[grpc.aio.ClientInterceptor] | None:
    """Client interceptors for a grpc.aio channel (a span per call, ``traceparent`` sent along);
    None when off (grpc's own default)."""
    if _state.provider is None:
        return None
    from opentelemetry.instrumentation.grpc import aio_client_interceptors  # noqa: PLC0415

    return list(aio_client_interceptors(tracer_provider=_state.provider))  # type: ignore[no-untyped-call]
