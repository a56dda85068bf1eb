"""In-process CPU cost of the Python pieces of a gRPC call: guard, handlers, request metrics.

The load runs see whole calls; this splits out the Python of one call with no network and no gRPC
core: jwt_authn's interceptor on a public method and on a protected one (verified-token cache hit),
each handler of ``service.handlers`` including serialising its reply, and the request metrics as
``service.metrics`` records them beside what prometheus_client's own Counter and Histogram cost
(the reason ``service/metrics.py`` keeps plain counters), and the handler wrapping the observing
interceptor keeps per method rather than redoing per call, and the token cache's key hash beside
SHA-256 (jwt_authn/token_cache.py says why it is BLAKE2b). CPU time of this process, per call.

Usage:
    figures = run_pieces(BenchOptions.quick())     # {"SecureRoute handler + reply serialisation": [µs], ...}
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, NamedTuple

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

from bench.options import BenchOptions
from bench.validation import make_case
from jwt_authn import AsyncAuthInterceptor, Authenticator
from jwt_authn.config import Policy
from jwt_authn.handler_wrapping import wrap_behavior
from jwt_authn.principal import principal_var
from secureroute.v1 import secureroute_pb2
from service.handlers import SecureRouteServicer
from service.metrics import LATENCY_BUCKETS_S, ServiceMetrics

__all__ = ["PIECES", "run_pieces"]

_SERVICE = "/secureroute.v1.SecureRouteService/"
PIECES = (
    "interceptor, public method (Health)",
    "interceptor, protected method, cached token (SecureRoute)",
    "Health handler + reply serialisation",
    "SecureRoute handler + reply serialisation",
    "request metrics, as service/metrics.py records them (plain counters)",
    "request metrics with prometheus_client's Counter and Histogram (a lock per update)",
    "wrapping a handler for the request metrics (done once per method, not per call)",
    "token cache key: BLAKE2b-256 of the token (what jwt_authn's TokenCache computes)",
    "token cache key: SHA-256 of the token (OpenSSL), for comparison",
)


class _Details(NamedTuple):
    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


class _Context:
    """The two ServicerContext methods the handlers use."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    async def send_initial_metadata(self, metadata: Any) -> None:
        return None


async def _per_call_us(call: Callable[[], Awaitable[object] | object], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        result = call()
        if asyncio.iscoroutine(result):
            await result
    return (time.process_time() - started) / calls * 1e6


async def _run(options: BenchOptions) -> dict[str, list[float]]:
    case = make_case("RS256", 1)
    policy = Policy(public_methods=(f"{_SERVICE}Health",))  # gRPC health and reflection are public by default
    authenticator = Authenticator(replace(case.config(), policy=policy))
    await authenticator.start()
    if not await authenticator.wait_ready(10):
        raise RuntimeError("the static key set did not load")
    interceptor, servicer, context = AsyncAuthInterceptor(authenticator), SecureRouteServicer(), _Context()
    metadata = (("authorization", f"Bearer {case.tokens[0]}"),)
    handlers = {
        "Health": grpc.unary_unary_rpc_method_handler(servicer.Health),
        "SecureRoute": grpc.unary_unary_rpc_method_handler(servicer.SecureRoute),
    }
    principal = await authenticator.verify(case.tokens[0])
    ours = ServiceMetrics()
    registry = CollectorRegistry()
    counter = Counter("calls", "calls", ("method", "code"), registry=registry)
    histogram = Histogram("seconds", "seconds", ("method",), buckets=LATENCY_BUCKETS_S, registry=registry)

    def intercept(method: str) -> Callable[[], Awaitable[object]]:
        async def continuation(details: Any) -> Any:
            return handlers[method]

        details = _Details(f"{_SERVICE}{method}", metadata)
        return lambda: interceptor.intercept_service(continuation, details)  # type: ignore[arg-type]

    async def health() -> bytes:
        reply = await servicer.Health(secureroute_pb2.HealthRequest(), context)  # type: ignore[arg-type]
        return reply.SerializeToString()

    async def secure() -> bytes:
        principal_var.set(principal)
        reply = await servicer.SecureRoute(secureroute_pb2.SecureRouteRequest(), context)  # type: ignore[arg-type]
        return reply.SerializeToString()

    def observing(behavior: Any) -> Any:  # the observer's shape: one closure around the behavior
        async def call(request: Any, context: Any) -> Any:
            return await behavior(request, context)

        return call

    def prometheus() -> None:
        counter.labels(f"{_SERVICE}Health", "OK").inc()
        histogram.labels(f"{_SERVICE}Health").observe(0.002)

    calls = max(100, options.warm_iterations // 5)
    pieces: dict[str, Callable[[], Any]] = dict(
        zip(
            PIECES,
            (
                intercept("Health"), intercept("SecureRoute"), health, secure,
                lambda: ours.observe_rpc(f"{_SERVICE}Health", grpc.StatusCode.OK, 0.002), prometheus,
                lambda: wrap_behavior(handlers["Health"], unary=observing, streaming=observing),
                lambda: hashlib.blake2b(case.tokens[0].encode(), digest_size=32).digest(),
                lambda: hashlib.sha256(case.tokens[0].encode()).digest(),
            ),
            strict=True,
        )
    )  # fmt: skip
    figures: dict[str, list[float]] = {name: [] for name in PIECES}
    try:
        for call in pieces.values():  # unmeasured warm-up
            await _per_call_us(call, 10)
        for _ in range(options.rounds):
            for name, call in pieces.items():
                figures[name].append(await _per_call_us(call, calls))
    finally:
        await authenticator.close()
    return figures


def run_pieces(options: BenchOptions) -> dict[str, list[float]]:
    """Per piece: microseconds of CPU per call, one value per round."""
    return asyncio.run(_run(options))
