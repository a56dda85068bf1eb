"""Tracing on, into the SDK's in-memory exporter (never an OTLP exporter: nothing leaves the process).

Usage:
    async def test_x(spans: Spans, start_service: ...) -> None:
        app = await start_service(settings)    # built after the fixture: traced
        ...
        (rpc,) = spans.named("secureroute.v1.SecureRouteService/SecureRoute")
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from span_tree import Spans

from runtime.tracing import disable_tracing, enable_tracing


@pytest.fixture
def spans() -> Iterator[Spans]:
    """Tracing on for every part built during the test (and off again after it)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    enable_tracing(provider)
    try:
        yield Spans(exporter)
    finally:
        disable_tracing()
        provider.shutdown()
