"""OpenTelemetry traces for every program: off unless configured, and then nothing on the request path.

With the ``[otel]`` extra installed and an exporter asked for by the standard variables
(``OTEL_TRACES_EXPORTER=otlp|console``, or an ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``),
``configure_tracing`` sets up an SDK tracer provider (batching, sampler, resource and exporter read
from ``OTEL_*``). The spans themselves are the programs' own: the gRPC server span and the guard's
verdicts in ``service.rpc_spans`` and ``service.guard_spans``, the HTTP server span and the
backend channel's client spans in ``http_facade.request_spans``. Each asks ``current_tracer()``
when it is built: None (off, the default) means it adds nothing, and no OpenTelemetry module is
imported.

Usage:
    configure_tracing("secureroute-service")        # once per process (run_program does it)
    tracer = current_tracer()                       # None when off
    shutdown_tracing()
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from runtime.request_id import NO_REQUEST_ID, request_id_var
from runtime.settings import SettingsError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "REQUEST_ID_ATTRIBUTE",
    "configure_tracing",
    "current_tracer",
    "current_tracer_provider",
    "disable_tracing",
    "enable_tracing",
    "shutdown_tracing",
    "tag_request_id",
    "tracing_enabled",
]

_log = logging.getLogger(__name__)

#: The instrumentation scope of every span we make.
TRACER_NAME = "secureroute"
#: The span attribute carrying the request's id (``x-request-id``), when it has one.
REQUEST_ID_ATTRIBUTE = "secureroute.request_id"

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


def current_tracer() -> Tracer | None:
    """The tracer spans are made with; None when tracing is off."""
    return _state.tracer


def current_tracer_provider() -> TracerProvider | None:
    """The provider client instrumentations are given; None when tracing is off."""
    return _state.provider


def tag_request_id(span: Span) -> None:
    """Put the current request's id on ``span``, when it has one."""
    request_id = request_id_var.get()
    if request_id != NO_REQUEST_ID:
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
