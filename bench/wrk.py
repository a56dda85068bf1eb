"""wrk as the HTTP load generator, with ``bench/loadgen/tokens.lua`` putting a token on every request.

The same script serves every run, so the generator does the same work in each: one token in the
file is reused (warm), many are each used once (cold; the thread stops when they run out).

Usage:
    result = run(ctx, "http://127.0.0.1:8080/secure-route", tokens_file, pids=[pid])
    problem = check(url, token, "Super secret stuff")
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.context import BenchContext
from bench.measure import LoadResult, run_generators
from bench.stack import http_get

__all__ = ["check", "parse", "run"]

_SCRIPT = Path(__file__).resolve().parent / "loadgen" / "tokens.lua"


def parse(output: str) -> LoadResult:
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
            return LoadResult(
                requests=int(data["requests"]),
                rps=int(data["requests"]) / (max(int(data["duration_us"]), 1) / 1e6),
                p50_us=float(data["p50_us"]),
                p99_us=float(data["p99_us"]),
                errors=int(data["status_errors"]) + int(data["socket_errors"]) + int(data["timeouts"]),
                tokens_exhausted=bool(data["exhausted"]),
            )
    raise RuntimeError(f"no BENCH_JSON line in wrk's output:\n{output[-800:]}")


def run(
    ctx: BenchContext, url: str, tokens: Path, *, pids: list[int], duration_s: float | None = None
) -> LoadResult:
    """wrk, one thread, ``http_connections`` connections, a token from ``tokens`` on every request."""
    assert ctx.tools.wrk is not None
    seconds = duration_s if duration_s is not None else ctx.options.load_duration_s
    argv = [
        ctx.tools.wrk, "-t1", f"-c{ctx.options.http_connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", str(_SCRIPT), url, "--", str(tokens),
    ]  # fmt: skip
    (result,) = run_generators([(argv, parse)], pids=pids, warmup_s=0.0, duration_s=seconds)
    return result


def check(url: str, token: str, expected: str) -> str | None:
    """None when GET ``url`` with ``token`` answers 200 with ``expected`` in the body."""
    status, body = http_get(url, token)
    return None if status == 200 and expected in body else f"GET {url}: {status} {body[:120]!r}"
