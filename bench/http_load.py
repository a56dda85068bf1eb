"""HTTP load with wrk: our facade and the original Express system, /secure-route warm and cold vs /health.

Every run uses the same wrk script (``bench/loadgen/tokens.lua``), so the generator does the
same work in each: warm runs reuse one token, cold runs take each token of a file once, and
/health runs carry the same fresh tokens as the cold runs (the facade forwards them to the
public Health RPC; Express ignores them), so only the token check differs.

A lever is measured beside them: a second facade (``facade-unix``) that reaches the same
service over its Unix socket instead of loopback TCP, with the same scenarios.

Usage:
    results = run_http_round(ctx, round_index, systems, rates)   # {"facade /health": LoadResult, ...}
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bench.context import LOAD_ALGORITHM, BenchContext
from bench.measure import LoadResult, run_generator
from bench.stack import Server, http_get

__all__ = [
    "SCENARIOS",
    "UNIX_FACADE",
    "UNIX_SCENARIOS",
    "WHATS",
    "check_http",
    "cold_runs_may_overlap",
    "round_order",
    "run_http_round",
    "warm_up",
    "wrk",
]

_SCRIPT = Path(__file__).resolve().parent / "loadgen" / "tokens.lua"
_SYSTEMS = ("facade", "express")
#: The scenarios each system runs, in this order.
WHATS = ("/health", "/secure-route warm", "/secure-route cold")
SCENARIOS = tuple(f"{system} {what}" for system in _SYSTEMS for what in WHATS)
#: The facade whose backend is ``unix:PATH``: the lever "a Unix socket when both share a host".
UNIX_FACADE = "facade-unix"
UNIX_SCENARIOS = tuple(f"{UNIX_FACADE} {what}" for what in WHATS)
_SHARED_POOL_NOTE = "may have reused the other facade's cold tokens (cache hits): the pool was too small"


def _parse_wrk(output: str) -> LoadResult:
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
            seconds = max(int(data["duration_us"]), 1) / 1e6
            return LoadResult(
                requests=int(data["requests"]),
                rps=int(data["requests"]) / seconds,
                p50_us=float(data["p50_us"]),
                p99_us=float(data["p99_us"]),
                errors=int(data["status_errors"]) + int(data["socket_errors"]) + int(data["timeouts"]),
                tokens_exhausted=bool(data["exhausted"]),
            )
    raise RuntimeError(f"no BENCH_JSON line in wrk's output:\n{output[-800:]}")


def wrk(
    ctx: BenchContext, url: str, tokens: Path, *, pids: list[int], duration_s: float | None = None
) -> LoadResult:
    """wrk, one thread, ``http_connections`` connections, a token from ``tokens`` on every request."""
    assert ctx.tools.wrk is not None
    seconds = duration_s if duration_s is not None else ctx.options.load_duration_s
    argv = [
        ctx.tools.wrk,
        "-t1",
        f"-c{ctx.options.http_connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(_SCRIPT),
        url,
        "--",
        str(tokens),
    ]
    return run_generator(argv, pids=pids, warmup_s=0.0, duration_s=seconds, parse=_parse_wrk)


def check_http(url: str, token: str, expected: str) -> str | None:
    """None when GET ``url`` with ``token`` answers 200 with ``expected`` in the body."""
    status, body = http_get(url, token)
    if status == 200 and expected in body:
        return None
    return f"GET {url}: {status} {body[:120]!r}"


def _pids(ctx: BenchContext, system: str) -> tuple[Server, list[int]]:
    if system in ("facade", UNIX_FACADE):
        facade = ctx.facade if system == "facade" else ctx.facade_unix
        assert facade is not None and ctx.service is not None
        # The facade's work includes the service's: count both processes' CPU.
        return facade, [facade.pid, ctx.service.pid]
    assert ctx.express is not None
    return ctx.express, [ctx.express.pid]


def warm_up(ctx: BenchContext, systems: tuple[str, ...]) -> dict[str, float]:
    """A short unmeasured /health run per system; returns each one's rate, to size token pools."""
    warm_file = ctx.token_file("warm", [ctx.warm_token])
    rates = {}
    for system in systems:
        server, pids = _pids(ctx, system)
        url = f"http://127.0.0.1:{server.port}"
        wrk(ctx, f"{url}/secure-route", warm_file, pids=pids, duration_s=max(1.0, ctx.options.warmup_s))
        rates[system] = wrk(ctx, f"{url}/health", warm_file, pids=pids, duration_s=1.0).rps
    return rates


def round_order(systems: tuple[str, ...], round_index: int) -> tuple[str, ...]:
    """The order a round runs ``systems`` in: the two facades take turns going first (TCP in round 0).

    Alternating (rather than always TCP first) keeps either facade from profiting from its
    place: a machine that got busier or quieter during the round, or a service whose token
    cache the other's cold run just filled. (Scenario by scenario would put each pair closer
    in time, but would split every system's runs, which stay back to back as before.) With an
    odd number of rounds TCP goes first once more often: an order effect would show as the odd
    round out in the per-round figures.
    """
    if round_index % 2 == 0 or "facade" not in systems or UNIX_FACADE not in systems:
        return systems
    swap = {"facade": UNIX_FACADE, UNIX_FACADE: "facade"}
    return tuple(swap.get(system, system) for system in systems)


def cold_runs_may_overlap(runs: list[LoadResult], pool_size: int, connections: int) -> bool:
    """Whether cold runs taking one pool of ``pool_size`` tokens from opposite ends may have sent a
    token in common. A run took at most one token per completed or failed request, plus one per
    connection still waiting when wrk stopped."""
    return sum(run.requests + run.errors + connections for run in runs) > pool_size


def run_http_round(
    ctx: BenchContext, round_index: int, systems: tuple[str, ...], rates: dict[str, float]
) -> dict[str, LoadResult]:
    """One round of every HTTP scenario of each running system, back to back (see ``round_order``).

    One pool of fresh tokens serves the round: /health and cold /secure-route of each system.
    The facade's service never saw them, and Express keeps no verified-token cache at all.
    Both facades share one service, so the Unix-socket facade takes the pool from its far end:
    the two cold runs send disjoint tokens as long as together they use less than the whole
    pool (checked; it holds two runs at the fastest /health rate, and a cold run is slower).
    ``rates`` (each system's /health rate) sizes the pool and is updated with this round's.
    """
    pool_size = ctx.pool_size(max(rates[system] for system in systems))
    tokens = ctx.mint.distinct(LOAD_ALGORITHM, pool_size)
    pool = ctx.token_file(f"http-cold-{round_index}", tokens)
    cold_files = dict.fromkeys(systems, pool)
    if UNIX_FACADE in systems:
        cold_files[UNIX_FACADE] = ctx.token_file(f"http-cold-{round_index}-reversed", tokens[::-1])
    warm_file = ctx.token_file("warm", [ctx.warm_token])
    results: dict[str, LoadResult] = {}
    order = round_order(systems, round_index)
    for system in order:
        server, pids = _pids(ctx, system)
        base = f"http://127.0.0.1:{server.port}"
        health = results[f"{system} /health"] = wrk(ctx, f"{base}/health", pool, pids=pids)
        rates[system] = health.rps
        results[f"{system} /secure-route warm"] = wrk(ctx, f"{base}/secure-route", warm_file, pids=pids)
        cold_file = cold_files[system]
        results[f"{system} /secure-route cold"] = wrk(ctx, f"{base}/secure-route", cold_file, pids=pids)
    if UNIX_FACADE in systems:
        cold_files[UNIX_FACADE].unlink()  # a second copy of the pool, tens of MB: not worth keeping
    facades = [f"{system} /secure-route cold" for system in order if system in ("facade", UNIX_FACADE)]
    if len(facades) == 2:
        runs = [results[name] for name in facades]
        if cold_runs_may_overlap(runs, pool_size, ctx.options.http_connections):
            # The later run is the one that may have met tokens the service had cached.
            results[facades[1]] = dataclasses.replace(runs[1], note=_SHARED_POOL_NOTE)
    return results
