"""Prometheus metrics of the facade: requests by method, route and status, and their latency.

The metrics listener (``http_facade.runner``, ``metrics_listen``) serves them. With several
workers (``--workers N``) the supervisor gives every worker the same ``PROMETHEUS_MULTIPROC_DIR``,
and each scrape, whichever worker answers it, sums the counters and histograms of all of them
(prometheus_client's multiprocess mode).

The request path pays one counter increment and one histogram observation. A lone process (the
one program, a facade without workers) keeps them as plain dict counts that a collector turns into
the same families at scrape time (prometheus_client's Counter and Histogram take a lock per update
and scan the buckets: the largest piece of ours in a profiled /health); workers share
prometheus_client's multiprocess files (label children looked up once and kept).

Usage:
    app[METRICS_KEY] = FacadeMetrics()
    app.middlewares.append(metrics_middleware)
    MetricsServer(settings.http.metrics_listen, app[METRICS_KEY].exposition)   # runtime.metrics_server
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator
from itertools import accumulate
from time import perf_counter

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from runtime.metrics import CachedLabels, new_registry

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


_REQUESTS, _REQUESTS_HELP = (
    "secureroute_http_requests",
    "HTTP requests answered, by method, route and status code.",
)
_LATENCY = "secureroute_http_request_duration_seconds"
_LATENCY_HELP = "Time to answer an HTTP request (the backend call included), by method and route."
_BOUNDS = [floatToGoString(b) for b in LATENCY_BUCKETS_S] + ["+Inf"]  # type: ignore[no-untyped-call]


def _multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


class _PlainCounts(Collector):
    """The two families from plain counts (one event loop thread: no lock needed)."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        #: (method, route) -> requests per latency bucket (not cumulative; the last is above every bound).
        self.latencies: dict[tuple[str, str], list[int]] = {}
        self.sums: defaultdict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[method, route, str(status)] += 1
        per_bucket = self.latencies.get((method, route))
        if per_bucket is None:
            per_bucket = self.latencies[method, route] = [0] * (len(LATENCY_BUCKETS_S) + 1)
        per_bucket[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1  # the first bound not below it
        self.sums[method, route] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(_REQUESTS, _REQUESTS_HELP, labels=("method", "route", "code"))
        for labels, count in sorted(self.requests.items()):
            requests.add_metric(labels, count)
        yield requests
        latency = HistogramMetricFamily(_LATENCY, _LATENCY_HELP, labels=("method", "route"))
        for key, per_bucket in sorted(self.latencies.items()):
            buckets = list(zip(_BOUNDS, accumulate(per_bucket), strict=True))
            latency.add_metric(key, buckets, self.sums[key])
        yield latency


class FacadeMetrics:
    """The facade's metrics, in a registry of their own (tests run several apps per process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Metrics in ``registry`` (the one program's: the service's), else in one of their own."""
        self.multiprocess = _multiprocess_dir() is not None
        # Per-process figures mean nothing summed across workers, so only a lone process has them.
        self.registry = new_registry(process_figures=not self.multiprocess) if registry is None else registry
        if not self.multiprocess:
            plain = _PlainCounts()
            self.registry.register(plain)
            self.observe = plain.observe  # type: ignore[method-assign]
            return
        self._requests = CachedLabels(
            Counter(_REQUESTS, _REQUESTS_HELP, ("method", "route", "code"), registry=self.registry)
        )
        self._latency = CachedLabels(
            Histogram(
                _LATENCY,
                _LATENCY_HELP,
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
