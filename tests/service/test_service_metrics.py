"""The service's RPC metrics, kept in plain counts, scrape exactly as prometheus_client's own
Counter and Histogram would for the same calls (the oracle)."""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import LATENCY_BUCKETS_S, UNKNOWN_METHOD, ServiceMetrics

SECURE = "/secureroute.v1.SecureRouteService/SecureRoute"
HEALTH = "/secureroute.v1.SecureRouteService/Health"
RPC_FAMILIES = ("secureroute_grpc_requests", "secureroute_grpc_request_duration_seconds")
# Bounds themselves (a bucket is "less than or equal"), between them, zero, beyond the last.
CALLS = [
    (SECURE, grpc.StatusCode.OK, 0.0005),
    (SECURE, grpc.StatusCode.OK, 0.0007),
    (SECURE, grpc.StatusCode.UNAUTHENTICATED, 0.001),
    (SECURE, grpc.StatusCode.OK, 0.0),
    (HEALTH, grpc.StatusCode.OK, 10.0),
    (HEALTH, grpc.StatusCode.OK, 42.0),
    (HEALTH, grpc.StatusCode.CANCELLED, 0.3),
]


def _rpc_samples(exposition: bytes) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(exposition.decode())
        if family.name in RPC_FAMILIES
        for sample in family.samples
        if not sample.name.endswith("_created")  # prometheus_client's creation times: ours has none
    }


def _oracle() -> bytes:
    registry = CollectorRegistry()
    requests = Counter("secureroute_grpc_requests", "", ("method", "code"), registry=registry)
    latency = Histogram(
        "secureroute_grpc_request_duration_seconds",
        "",
        ("method",),
        buckets=LATENCY_BUCKETS_S,
        registry=registry,
    )
    for method, code, seconds in CALLS:
        requests.labels(method, code.name).inc()
        latency.labels(method).observe(seconds)
    requests.labels(UNKNOWN_METHOD, "UNIMPLEMENTED").inc()
    return generate_latest(registry)


def test_rpc_counts_and_latency_buckets_scrape_as_prometheus_client_s_own() -> None:
    metrics = ServiceMetrics()
    for method, code, seconds in CALLS:
        metrics.observe_rpc(method, code, seconds)
    metrics.count_unknown_method()
    ours = _rpc_samples(metrics.exposition())
    assert ours == _rpc_samples(_oracle())
    assert ("secureroute_grpc_request_duration_seconds_count", (("method", HEALTH),), 3.0) in ours


def test_nothing_observed_scrapes_no_rpc_samples() -> None:
    assert _rpc_samples(ServiceMetrics().exposition()) == set()
