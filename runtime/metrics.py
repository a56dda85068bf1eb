"""Prometheus pieces both programs share: a registry of their own, and label children looked up once.

Each server (and each facade app) has its own registry, as tests run several in one process.
The request path pays a dict lookup for a metric's label child instead of ``labels()``, which
validates and joins the label values on every call.

Usage:
    registry = new_registry()
    requests = CachedLabels(Counter("demo_requests", "Requests by code.", ("code",), registry=registry))
    requests.labels("200").inc()
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.metrics import MetricWrapperBase

__all__ = ["CachedLabels", "new_registry"]

M = TypeVar("M", bound=MetricWrapperBase)


def new_registry(*, process_figures: bool = True) -> CollectorRegistry:
    """A registry of its own, with the ``process_*`` and ``python_*`` figures unless told not to."""
    registry = CollectorRegistry()
    if process_figures:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


class CachedLabels(Generic[M]):
    """A labelled metric whose children are each made once, then found by their label values."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child
