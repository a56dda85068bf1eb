"""Prometheus metrics of the facade: requests by method, route and status, and their latency.

The metrics listener (``http_facade.runner``, ``metrics_listen``) serves them. With several
workers (``--workers N``) the supervisor gives every worker the same ``PROMETHEUS_MULTIPROC_DIR``,
and each scrape, whichever worker answers it, sums the counters and histograms of all of them
(prometheus_client's multiprocess mode).

The request path pays one counter increment and one histogram observation (label children are
looked up once and kept).

Usage:
    app[METRICS_KEY] = FacadeMetrics()
    app.middlewares.append(metrics_middleware)
    MetricsServer(settings.http.metrics_listen, app[METRICS_KEY].exposition)   # secureroute.metrics_server
"""

from __future__ import annotations

import asyncio
import os
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from secureroute.metrics import CachedLabels, new_registry

__all__ = [
    "LATENCY_BUCKETS_S",
    "METRICS_KEY",
    "MULTIPROCESS_ENV",
    "FacadeMetrics",
    "metrics_middleware",
]

#: prometheus_client reads this at import: set by the supervisor for its workers only.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: From a millisecond to the backend deadline's order of magnitude.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Methods kept as label values; others (chosen by clients, so unbounded) count as "OTHER".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
#: The route label of requests that matched no route (their paths are the client's choice).
UNMATCHED_ROUTE = "unmatched"


def _multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


class FacadeMetrics:
    """The facade's metric objects, in a registry of their own (tests run several apps per process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Metrics in ``registry`` (the one program's: the service's), else in one of their own."""
        self.multiprocess = _multiprocess_dir() is not None
        # Per-process figures mean nothing summed across workers, so only a lone process has them.
        self.registry = new_registry(process_figures=not self.multiprocess) if registry is None else registry
        self._requests = CachedLabels(
            Counter(
                "secureroute_http_requests",
                "HTTP requests answered, by method, route and status code.",
                ("method", "route", "code"),
                registry=self.registry,
            )
        )
        self._latency = CachedLabels(
            Histogram(
                "secureroute_http_request_duration_seconds",
                "Time to answer an HTTP request (the backend call included), by method and route.",
                ("method", "route"),
                buckets=LATENCY_BUCKETS_S,
                registry=self.registry,
            )
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        directory = _multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


METRICS_KEY = web.AppKey("metrics", FacadeMetrics)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = perf_counter()
    method = request.method if request.method in _METHODS else "OTHER"
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # the router's 404 and 405
        request.app[METRICS_KEY].observe(method, _route(request), exc.status, perf_counter() - started)
        raise
    except asyncio.CancelledError:  # the client went away: nginx's 499
        request.app[METRICS_KEY].observe(method, _route(request), 499, perf_counter() - started)
        raise
    except Exception:  # aiohttp answers 500 for an unhandled error
        request.app[METRICS_KEY].observe(method, _route(request), 500, perf_counter() - started)
        raise
    request.app[METRICS_KEY].observe(method, _route(request), response.status, perf_counter() - started)
    return response
