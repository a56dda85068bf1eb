"""In-process CPU cost of each Python piece of a gRPC call: interceptor and handler, Health vs SecureRoute.

The load runs of ``grpc_load`` see whole calls; this splits out the Python that differs
between Health and SecureRoute, with no network and no gRPC core: jwt_authn's interceptor on
a public method and on a protected one (verified-token cache hit), and each handler of
``service.handlers`` including serialising its reply. CPU time of this process, per call.

Usage:
    figures = run_pieces(BenchOptions.quick())     # {"SecureRoute handler": [µs per round], ...}
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, NamedTuple

import grpc

from bench.options import BenchOptions
from bench.validation import make_case
from jwt_authn import AsyncAuthInterceptor, Authenticator
from jwt_authn.config import PUBLIC_GRPC_INFRA_METHODS, Policy
from jwt_authn.principal import principal_var
from secureroute.v1 import secureroute_pb2
from service.handlers import ReplyCache, SecureRouteServicer

__all__ = ["PIECES", "run_pieces"]

_SERVICE = "/secureroute.v1.SecureRouteService/"
PIECES = (
    "interceptor, public method (Health)",
    "interceptor, protected method, cached token (SecureRoute)",
    "Health handler + reply serialisation",
    "SecureRoute handler + reply serialisation",
    "SecureRoute handler + reply serialisation, reply built on every call (no reply cache)",
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


async def _per_call_us(call: Callable[[], Awaitable[object]], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        await call()
    return (time.process_time() - started) / calls * 1e6


async def _run(options: BenchOptions) -> dict[str, list[float]]:
    case = make_case("RS256", 1)
    policy = Policy(public_methods=(*PUBLIC_GRPC_INFRA_METHODS, f"{_SERVICE}Health"))
    authenticator = Authenticator(replace(case.config(), policy=policy))
    await authenticator.start()
    if not await authenticator.wait_ready(10):
        raise RuntimeError("the static key set did not load")
    interceptor = AsyncAuthInterceptor(authenticator)
    servicer = SecureRouteServicer()
    # What the reply cache saves: the same handler with a cache that keeps nothing.
    uncached = SecureRouteServicer()
    uncached.replies = ReplyCache(max_entries=0)
    metadata = (("authorization", f"Bearer {case.tokens[0]}"),)
    handlers = {
        "Health": grpc.unary_unary_rpc_method_handler(servicer.Health),
        "SecureRoute": grpc.unary_unary_rpc_method_handler(servicer.SecureRoute),
    }
    context = _Context()
    principal = await authenticator.verify(case.tokens[0])

    def intercept(method: str) -> Callable[[], Awaitable[object]]:
        async def continuation(details: Any) -> Any:
            return handlers[method]

        details = _Details(f"{_SERVICE}{method}", metadata)
        return lambda: interceptor.intercept_service(continuation, details)  # type: ignore[arg-type]

    async def health() -> bytes:
        reply = await servicer.Health(secureroute_pb2.HealthRequest(), context)  # type: ignore[arg-type]
        return reply.SerializeToString()

    def secure(handler: SecureRouteServicer) -> Callable[[], Awaitable[bytes]]:
        async def call() -> bytes:
            principal_var.set(principal)
            reply = await handler.SecureRoute(secureroute_pb2.SecureRouteRequest(), context)  # type: ignore[arg-type]
            return reply.SerializeToString()

        return call

    calls = max(100, options.warm_iterations // 5)
    pieces = dict(
        zip(
            PIECES,
            (intercept("Health"), intercept("SecureRoute"), health, secure(servicer), secure(uncached)),
            strict=True,
        )
    )
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
