"""The finished spans of a test, with the look-ups the span-tree tests need."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class Spans:
    """The finished spans, with the look-ups the span-tree tests need."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    @property
    def all(self) -> list[ReadableSpan]:
        return list(self._exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.all if span.name == name]

    async def ended(self, name: str, count: int = 1, timeout_s: float = 5.0) -> list[ReadableSpan]:
        """The ``count`` spans named ``name`` once they have ended: a server span ends when its
        handler returns, which may be just after the client has read the call's status."""
        async with asyncio.timeout(timeout_s):
            while len(found := self.named(name)) < count:  # noqa: ASYNC110  # the exporter has no event
                await asyncio.sleep(0.01)
        return found

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        parent_id = parent.context.span_id
        return [span for span in self.all if span.parent is not None and span.parent.span_id == parent_id]

    def clear(self) -> None:
        self._exporter.clear()
