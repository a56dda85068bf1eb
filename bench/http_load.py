"""HTTP load with wrk: our facade and the original Express system, /secure-route warm and cold vs /health.

Every run uses the same wrk script (``bench/loadgen/tokens.lua``), so the generator does the
same work in each: warm runs reuse one token, cold runs take each token of a file once, and
/health runs carry the same fresh tokens as the cold runs (the facade forwards them to the
public Health RPC; Express ignores them), so only the token check differs.

Usage:
    results = run_http_round(ctx, round_index)   # {"facade /health": LoadResult, ...}
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.context import LOAD_ALGORITHM, BenchContext
from bench.measure import LoadResult, run_generator
from bench.stack import Server, http_get

__all__ = ["SCENARIOS", "check_http", "run_http_round", "warm_up", "wrk"]

_SCRIPT = Path(__file__).resolve().parent / "loadgen" / "tokens.lua"
_SYSTEMS = ("facade", "express")
SCENARIOS = tuple(
    f"{system} {what}"
    for system in _SYSTEMS
    for what in ("/health", "/secure-route warm", "/secure-route cold")
)


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
    if system == "facade":
        assert ctx.facade is not None and ctx.service is not None
        # The facade's work includes the service's: count both processes' CPU.
        return ctx.facade, [ctx.facade.pid, ctx.service.pid]
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


def run_http_round(
    ctx: BenchContext, round_index: int, systems: tuple[str, ...], rates: dict[str, float]
) -> dict[str, LoadResult]:
    """One round of every HTTP scenario of each running system, back to back.

    One pool of fresh tokens serves the round: /health and cold /secure-route of each system.
    The facade's service never saw them, and Express keeps no verified-token cache at all.
    ``rates`` (each system's /health rate) sizes the pool and is updated with this round's.
    """
    pool_size = ctx.pool_size(max(rates[system] for system in systems))
    pool = ctx.token_file(f"http-cold-{round_index}", ctx.mint.distinct(LOAD_ALGORITHM, pool_size))
    warm_file = ctx.token_file("warm", [ctx.warm_token])
    results: dict[str, LoadResult] = {}
    for system in systems:
        server, pids = _pids(ctx, system)
        base = f"http://127.0.0.1:{server.port}"
        health = results[f"{system} /health"] = wrk(ctx, f"{base}/health", pool, pids=pids)
        rates[system] = health.rps
        results[f"{system} /secure-route warm"] = wrk(ctx, f"{base}/secure-route", warm_file, pids=pids)
        results[f"{system} /secure-route cold"] = wrk(ctx, f"{base}/secure-route", pool, pids=pids)
    return results
