"""Prometheus metrics of the gRPC service: RPCs, authentication outcomes, and jwt_authn's caches.

The request path pays plain dict and list increments: per RPC one count by method and code and
one latency bucket (found by bisection) by method, plus one count per authentication outcome;
collectors turn them into Prometheus families when Prometheus scrapes. (prometheus_client's own
Counter and Histogram take a lock per update, several times the cost of a dict increment:
docs/benchmarks.md, section 2, measures both.)
Everything runs on the service's one event loop thread, scrapes included (metrics_server.py),
so no update needs a lock. Cache and key-set figures are not pushed at all:
``AuthnStateCollector`` reads the authenticator's plain counters at scrape time.

Metrics (see README "Operating it"):
    secureroute_grpc_requests_total{method,code}, secureroute_grpc_request_duration_seconds{method},
    jwt_authn_authentications_total{outcome}, jwt_authn_token_cache_{hits,misses}_total,
    jwt_authn_token_cache_entries, jwt_authn_jwks_refreshes_total{issuer,result},
    jwt_authn_jwks_on_demand_refreshes_total{issuer}, jwt_authn_jwks_age_seconds{issuer},
    jwt_authn_jwks_keys{issuer}, and the process_* and python_* defaults.

Usage:
    metrics = ServiceMetrics()
    authenticator = Authenticator(config, observer=metrics)
    metrics.watch(authenticator)
    metrics.observe_rpc("/pkg.S/M", grpc.StatusCode.OK, 0.002)
    text = metrics.exposition()
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator, Mapping
from itertools import accumulate
from typing import TypeVar

import grpc
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from jwt_authn import Authenticator
from runtime.metrics import new_registry

__all__ = ["LATENCY_BUCKETS_S", "UNKNOWN_METHOD", "AuthnStateCollector", "ServiceMetrics"]

#: From half a millisecond (a cached token) to the 10 s a cold key fetch could take.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: The method label of calls to methods we do not serve (their names are the caller's choice:
#: as labels they would be unbounded).
UNKNOWN_METHOD = "unknown"


class AuthnStateCollector(Collector):
    """Reads the authenticator's counters at scrape time; nothing runs on the request path."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    def collect(self) -> Iterator[Metric]:
        cache = self._authenticator.token_cache
        yield CounterMetricFamily(
            "jwt_authn_token_cache_hits", "Verified-token cache hits.", value=cache.hits
        )
        yield CounterMetricFamily(
            "jwt_authn_token_cache_misses", "Verified-token cache misses.", value=cache.misses
        )
        yield GaugeMetricFamily("jwt_authn_token_cache_entries", "Tokens in the cache.", value=len(cache))
        refreshes = CounterMetricFamily(
            "jwt_authn_jwks_refreshes", "Key-set loads by result.", labels=("issuer", "result")
        )
        on_demand = CounterMetricFamily(
            "jwt_authn_jwks_on_demand_refreshes",
            "Key-set refreshes caused by an unknown kid (rate limited by the cooldown).",
            labels=("issuer",),
        )
        age = GaugeMetricFamily(
            "jwt_authn_jwks_age_seconds", "Seconds since the key set was last loaded.", labels=("issuer",)
        )
        keys = GaugeMetricFamily(
            "jwt_authn_jwks_keys",
            "Usable keys in the current key set (0: none, or too stale).",
            labels=("issuer",),
        )
        for issuer, key_set_cache in self._authenticator.key_sets.items():
            refreshes.add_metric((issuer, "success"), key_set_cache.refresh_successes)
            refreshes.add_metric((issuer, "failure"), key_set_cache.refresh_failures)
            on_demand.add_metric((issuer,), key_set_cache.on_demand_refreshes)
            age_s = key_set_cache.age_s
            if age_s is not None:  # never loaded: no sample rather than a made-up age
                age.add_metric((issuer,), age_s)
            key_set = key_set_cache.key_set
            keys.add_metric((issuer,), len(key_set.keys) if key_set is not None else 0)
        yield from (refreshes, on_demand, age, keys)


_LabelValues = TypeVar("_LabelValues", bound=tuple[str, ...])
_LATENCY_BOUNDS = [floatToGoString(b) for b in LATENCY_BUCKETS_S] + ["+Inf"]  # type: ignore[no-untyped-call]


def _counter_family(
    name: str, documentation: str, labels: tuple[str, ...], counts: Mapping[_LabelValues, int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for values, count in sorted(counts.items()):
        family.add_metric(values, count)
    return family


class ServiceMetrics(Collector):
    """One registry per server (tests run several in a process); also the AuthnObserver, and the
    collector that exports its own plain counts at scrape time."""

    def __init__(self) -> None:
        self._calls: defaultdict[tuple[str, str], int] = defaultdict(int)
        #: method -> calls per latency bucket (not cumulative; the last is above every bound).
        self._latencies: dict[str, list[int]] = {}
        self._latency_sums: defaultdict[str, float] = defaultdict(float)
        self._outcomes: defaultdict[tuple[str], int] = defaultdict(int)
        self.registry = new_registry()
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        yield _counter_family(
            "secureroute_grpc_requests",
            "gRPC calls handled, by full method name and status code.",
            ("method", "code"),
            self._calls,
        )
        latency = HistogramMetricFamily(
            "secureroute_grpc_request_duration_seconds",
            "Time from the call's arrival at our interceptor to its end, by method.",
            labels=("method",),
        )
        for method, per_bucket in sorted(self._latencies.items()):
            buckets = list(zip(_LATENCY_BOUNDS, accumulate(per_bucket), strict=True))
            latency.add_metric([method], buckets, self._latency_sums[method])
        yield latency
        yield _counter_family(
            "jwt_authn_authentications",
            "Authentication outcomes: ok, or the failure reason (missing_token, token_expired, ...).",
            ("outcome",),
            self._outcomes,
        )

    def watch(self, authenticator: Authenticator) -> None:
        """Export ``authenticator``'s cache and key-set state at scrape time."""
        self.registry.register(AuthnStateCollector(authenticator))

    def observe_rpc(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        self._calls[method, code.name] += 1
        per_bucket = self._latencies.get(method)
        if per_bucket is None:
            per_bucket = self._latencies[method] = [0] * (len(LATENCY_BUCKETS_S) + 1)
        # Prometheus buckets are "less than or equal": the first bound not below ``seconds``.
        per_bucket[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        self._latency_sums[method] += seconds

    def count_unknown_method(self) -> None:
        """A call to a method we do not serve (answered UNIMPLEMENTED by gRPC itself)."""
        self._calls[UNKNOWN_METHOD, grpc.StatusCode.UNIMPLEMENTED.name] += 1

    def on_outcome(self, reason: str) -> None:
        """jwt_authn's AuthnObserver hook. Reasons are jwt_authn's fixed, short set: a safe label.
        Called on the authenticator's one event loop thread, so the increment needs no lock."""
        self._outcomes[(reason,)] += 1

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
