"""gRPC load: our service with the guard on and off, and the Python peer, side by side in each round.

Four servers run the same SecureRouteService on loopback:

- ``service``: ``python -m service``, the product;
- ``guard-off``: the same server with jwt_authn's interceptor replaced by a pass-through that sets
  one fixed principal (``bench.variants``): on / off is what the guard costs, with the same server
  code and the same traffic on both sides;
- ``traced``: the same server with tracing on (``bench.variants``; spans encoded, never sent):
  traced / service is what traces cost when on;
- ``pyjwt``: grpc.aio with an interceptor on PyJWT's ``PyJWKClient`` (``bench/peers/pyjwt_grpc.py``),
  what a Python user would write instead;
- ``bare``: the ceiling, a grpc.aio server without interceptors on our loop (``bench/peers/bare.py``):
  Health, and SecureRoute answering without reading the token.

h2load repeats one request: Health, and SecureRoute with one reused token (warm). h2grpc sends a
fresh token on every call (cold); every system takes the same pool, new to each (none shares a
token cache with another), so the guard-off server carries the same uncompressible header bytes as
the guarded one. The "@ half load" pair runs Health and SecureRoute warm at once on the service, one
h2load each at a quarter of the rate Health saturated at in the same round: their p99 difference is
the latency authentication adds when the server is not saturated, measured in one window so a stall
of the shared machine delays both alike.

Usage:
    start_systems(ctx)
    results = run_round(ctx, round_index)   # {"service Health": LoadResult, "pyjwt SecureRoute cold": ...}
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

from bench import h2grpc, h2load
from bench.context import LOAD_ALGORITHM, BenchContext, Round
from bench.measure import LoadResult, in_turn
from bench.stack import ANY_PORT, AUDIENCE

__all__ = ["HALF_LOAD", "SCENARIOS", "cold_pool_name", "run_round", "start_systems"]

#: (system, method, generator, warm or cold), in report order; pairs of a ratio sit side by side.
_RUNS = (
    ("service", "Health", "h2load", "warm"),
    ("pyjwt", "Health", "h2load", "warm"),
    ("service", "SecureRoute", "h2load", "warm"),
    ("guard-off", "SecureRoute", "h2load", "warm"),
    ("traced", "SecureRoute", "h2load", "warm"),
    ("pyjwt", "SecureRoute", "h2load", "warm"),
    ("service", "SecureRoute", "h2grpc", "cold"),
    ("guard-off", "SecureRoute", "h2grpc", "cold"),
    ("pyjwt", "SecureRoute", "h2grpc", "cold"),
    ("service", "SecureRoute", "h2grpc", "warm"),
    ("bare", "Health", "h2load", "warm"),
    ("bare", "SecureRoute", "h2load", "warm"),
)
#: The two scenarios run together at half the saturating load, one window.
HALF_LOAD = ("service Health @ half load", "service SecureRoute warm @ half load")
_HALF_NOTE = "run together, a quarter of the load each; CPU per request of both"


def _name(system: str, method: str, generator: str, temperature: str) -> str:
    name = system + " " + (method if method == "Health" else f"{method} {temperature}")
    return f"{name} (h2grpc)" if generator == "h2grpc" and temperature == "warm" else name


SCENARIOS = (*(_name(*run) for run in _RUNS), *HALF_LOAD)


def cold_pool_name(round_index: int) -> str:
    return f"grpc-cold-{round_index}"


def start_systems(ctx: BenchContext) -> None:
    """The guard-off and traced services and the PyJWT peer beside the running service. (A future
    system, the one program's gRPC side say, is one more entry here and in ``_RUNS``.)"""
    stack = ctx.stack
    guard_off = ("bench.variants", "guard-off", "--principal-token", ctx.warm_token)
    ctx.servers["guard-off"] = stack.start_grpc("guard-off", stack.service_argv(launcher=guard_off))
    ctx.servers["traced"] = stack.start_grpc(
        "traced", stack.service_argv(launcher=("bench.variants", "traced"))
    )
    peer = [sys.executable, "-m", "bench.peers.pyjwt_grpc", "--listen", ANY_PORT]
    peer += ["--issuer", stack.issuer_url, "--audience", AUDIENCE]
    ctx.servers["pyjwt"] = stack.start_grpc("pyjwt", peer)
    bare = [sys.executable, "-m", "bench.peers.bare", "grpc", "--listen", ANY_PORT]
    ctx.servers["bare"] = stack.start_grpc("bare", bare)


def run_round(ctx: BenchContext, round_index: int, health_rps: float) -> Round:
    """One round of every scenario, back to back in this round's turn, then the half-load pair.
    ``health_rps`` (the service's Health rate so far) sizes the cold pool."""
    pool = ctx.token_file(
        cold_pool_name(round_index), ctx.mint.distinct(LOAD_ALGORITHM, ctx.pool_size(health_rps))
    )

    def one(system: str, method: str, generator: str, temperature: str) -> Callable[[], LoadResult]:
        server = ctx.servers[system]
        port, pids = server.port, [server.pid]
        if generator == "h2load":
            name = f"{system}-{method}-{round_index}"
            return lambda: h2load.run(ctx, port, method, ctx.warm_token, pids=pids, name=name)[0]
        if temperature == "cold":
            return lambda: h2grpc.run(ctx, port, method, pids=pids, tokens=pool)
        return lambda: h2grpc.run(ctx, port, method, pids=pids, token=ctx.warm_token)

    results = in_turn(round_index, {_name(*run): one(*run) for run in _RUNS})
    service = ctx.servers["service"]
    together = h2load.run(
        ctx, service.port, ("Health", "SecureRoute"), ctx.warm_token, pids=[service.pid],
        name=f"half-{round_index}", total_rps=results["service Health"].rps / 2,
    )  # fmt: skip
    for scenario, result in zip(HALF_LOAD, together, strict=True):
        results[scenario] = dataclasses.replace(result, note=_HALF_NOTE)
    return results
