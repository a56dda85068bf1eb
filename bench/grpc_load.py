"""gRPC load on the service: SecureRoute warm and cold against Health, on the same server, same run.

- h2load (nghttp2) sends gRPC frames with one fixed header set: Health and SecureRoute with one
  reused token (warm). Latency percentiles come from its per-request log.
- h2load cannot change a header per request, so cold tokens (each used once) go through
  ``bench/loadgen/h2grpc.js``, which sends the same frames and headers with Node's http2
  module. Health runs through it too, with the same fresh tokens (Health ignores them), so the
  cold ratio compares like with like: same generator, same header bytes on the wire.

Before any run, one call with ``nghttp`` checks that the very request h2load will repeat ends
in ``grpc-status: 0`` (h2load sees only HTTP statuses, and gRPC errors are HTTP 200).

The "@ half load" scenarios run Health and SecureRoute warm at once, one h2load each at a
quarter of the rate Health saturated at in the same round (h2load ``--rps`` per connection), so
the server carries half its saturating load. Their p99 difference is the latency authentication
adds when the server is not saturated, measured in one window: a stall of the shared machine
delays both alike, where two runs one after the other drew p99 differences of -4.6 to +6.7 ms
in one 5-round run, from stalls that hit one run and not the other.

Within each other group (the two saturating runs, the three h2grpc runs) the order flips every
round, so neither side of a ratio is always the one measured first.

Usage:
    results = run_grpc_round(ctx)     # {"h2load Health": LoadResult, "h2load SecureRoute warm": ...}
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.context import LOAD_ALGORITHM, BenchContext
from bench.measure import LoadResult, run_generator, run_generators
from bench.stats import percentile

__all__ = [
    "GRPC_FRAME",
    "HALF_LOAD_SCENARIOS",
    "SCENARIOS",
    "check_grpc_call",
    "cold_pool_name",
    "h2grpc",
    "h2load",
    "h2load_together",
    "run_grpc_round",
]

#: The 5-byte gRPC frame of an empty message: not compressed, length 0.
GRPC_FRAME = b"\x00\x00\x00\x00\x00"
_SERVICE = "/secureroute.v1.SecureRouteService/"
_H2GRPC = Path(__file__).resolve().parent / "loadgen" / "h2grpc.js"

#: The two half-load scenarios: run together, one generator each (``h2load_together``).
HALF_LOAD_SCENARIOS = ("h2load Health @ half load", "h2load SecureRoute warm @ half load")
_TOGETHER_NOTE = "run together, a quarter of the load each; CPU per request of both"
#: Scenario names, in report order (each round runs each group in turn: see ``_in_turn``).
SCENARIOS = (
    "h2load Health",
    "h2load SecureRoute warm",
    *HALF_LOAD_SCENARIOS,
    "h2grpc Health",
    "h2grpc SecureRoute cold",
    "h2grpc SecureRoute warm",
)


def cold_pool_name(round_index: int) -> str:
    """The name of a round's cold token pool (``BenchContext.token_path`` finds its file)."""
    return f"grpc-cold-{round_index}"


def _h2_duration(seconds: float) -> str:
    """h2load's duration syntax: whole numbers with a unit."""
    return f"{max(1, round(seconds * 1000))}ms"


def frame_file(workdir: Path) -> Path:
    path = workdir / "grpc-empty-frame.bin"
    path.write_bytes(GRPC_FRAME)
    return path


def _grpc_headers(token: str) -> list[str]:
    return [
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        "-H",
        f"authorization: Bearer {token}",
    ]


def check_grpc_call(nghttp: str, port: int, method: str, token: str, frame: Path) -> str | None:
    """None when one call with exactly h2load's request ends in grpc-status 0, else what went wrong."""
    completed = subprocess.run(  # noqa: S603
        [nghttp, "-v", "-d", str(frame), *_grpc_headers(token), f"http://127.0.0.1:{port}{_SERVICE}{method}"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    text = completed.stdout.decode("latin-1")
    found = re.findall(r"grpc-status: (\d+)", text)
    if found == ["0"]:
        return None
    return f"{method}: grpc-status {found or 'missing'} (nghttp exit {completed.returncode})"


def _parse_h2load(log_path: Path) -> Callable[[str], LoadResult]:
    def parse(output: str) -> LoadResult:
        rate = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", output)
        counts = re.search(
            r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
            r"(\d+) errored, (\d+) timeout",
            output,
        )
        statuses = re.search(r"status codes: (\d+) 2xx", output)
        if rate is None or counts is None or statuses is None:
            raise RuntimeError(f"unexpected h2load output:\n{output[-800:]}")
        done, succeeded_2xx = int(counts.group(2)), int(statuses.group(1))
        latencies_us = []
        with open(log_path, encoding="ascii") as log:
            for line in log:
                fields = line.split("\t")
                if len(fields) >= 3:
                    latencies_us.append(float(fields[2]))
        errors = int(counts.group(4)) + int(counts.group(5)) + int(counts.group(6)) + (done - succeeded_2xx)
        return LoadResult(
            requests=done,
            rps=float(rate.group(1)),
            p50_us=percentile(latencies_us, 50),
            p99_us=percentile(latencies_us, 99),
            errors=errors,
        )

    return parse


def _h2load_argv(
    ctx: BenchContext, port: int, method: str, token: str, *, log_path: Path, total_rps: float | None
) -> list[str]:
    assert ctx.tools.h2load is not None
    options = ctx.options
    return [
        ctx.tools.h2load,
        "-t1",
        f"-c{options.h2_connections}",
        f"-m{options.h2_streams}",
        f"-D{_h2_duration(options.load_duration_s)}",
        f"--warm-up-time={_h2_duration(options.warmup_s)}",
        *([f"--rps={max(1, round(total_rps / options.h2_connections))}"] if total_rps else []),
        "-d",
        str(ctx.workdir / "grpc-empty-frame.bin"),
        *_grpc_headers(token),
        f"--log-file={log_path}",
        f"http://127.0.0.1:{port}{_SERVICE}{method}",
    ]


def h2load(
    ctx: BenchContext,
    port: int,
    method: str,
    token: str,
    *,
    pids: list[int],
    name: str,
    total_rps: float | None = None,
) -> LoadResult:
    """h2load: ``-c`` connections x ``-m`` streams of one method with one token, for the run's
    duration; as fast as it can, or at ``total_rps`` requests per second in all."""
    log_path = ctx.workdir / f"h2load-{name}.log"
    argv = _h2load_argv(ctx, port, method, token, log_path=log_path, total_rps=total_rps)
    options = ctx.options
    return run_generator(
        argv,
        pids=pids,
        warmup_s=options.warmup_s,
        duration_s=options.load_duration_s,
        parse=_parse_h2load(log_path),
    )


def h2load_together(
    ctx: BenchContext,
    port: int,
    methods: Sequence[str],
    token: str,
    *,
    pids: list[int],
    name: str,
    total_rps: float,
) -> list[LoadResult]:
    """One h2load per method, all at once, sharing ``total_rps`` evenly: each method's latency is
    measured in the same window as the others', so whatever else the machine does hits them alike."""
    options = ctx.options
    generators = []
    for method in methods:
        log_path = ctx.workdir / f"h2load-{name}-{method}.log"
        argv = _h2load_argv(ctx, port, method, token, log_path=log_path, total_rps=total_rps / len(methods))
        generators.append((argv, _parse_h2load(log_path)))
    return run_generators(
        generators, pids=pids, warmup_s=options.warmup_s, duration_s=options.load_duration_s
    )


def _parse_h2grpc(output: str) -> LoadResult:
    data = json.loads(output.strip().splitlines()[-1])
    return LoadResult(
        requests=int(data["requests"]),
        rps=float(data["rps"]),
        p50_us=float(data["p50_us"] or "nan"),
        p99_us=float(data["p99_us"] or "nan"),
        errors=sum(int(v) for v in data["errors"].values()),
        tokens_exhausted=bool(data["tokens_exhausted"]),
    )


def h2grpc(
    ctx: BenchContext, port: int, method: str, *, pids: list[int], tokens: Path | None = None, token: str = ""
) -> LoadResult:
    """The Node generator: a fresh token per call from ``tokens``, or ``token`` reused."""
    assert ctx.tools.node is not None
    options = ctx.options
    source = ["--tokens", str(tokens)] if tokens is not None else ["--token", token]
    argv = [
        ctx.tools.node,
        str(_H2GRPC),
        "--url",
        f"http://127.0.0.1:{port}",
        "--path",
        f"{_SERVICE}{method}",
        *source,
        "--duration",
        f"{options.load_duration_s:g}",
        "--warmup",
        f"{options.warmup_s:g}",
        "--connections",
        str(options.h2_connections),
        "--streams",
        str(options.h2_streams),
    ]
    return run_generator(
        argv, pids=pids, warmup_s=options.warmup_s, duration_s=options.load_duration_s, parse=_parse_h2grpc
    )


def _in_turn(round_index: int, runs: dict[str, Callable[[], LoadResult]]) -> dict[str, LoadResult]:
    """Run ``runs`` in their order in even rounds and in reverse in odd ones, so no scenario is
    always the one measured first (a machine that gets busier or quieter would favour it)."""
    names = list(runs) if round_index % 2 == 0 else list(reversed(runs))
    return {name: runs[name]() for name in names}


def run_grpc_round(ctx: BenchContext, round_index: int) -> dict[str, LoadResult]:
    """One round of every gRPC scenario, back to back, on the running service."""
    assert ctx.service is not None
    port, pids = ctx.service.port, [ctx.service.pid]
    token = ctx.warm_token
    results: dict[str, LoadResult] = {}
    if ctx.tools.h2load is not None:
        results |= _in_turn(
            round_index,
            {
                "h2load Health": lambda: h2load(
                    ctx, port, "Health", token, pids=pids, name=f"health-{round_index}"
                ),
                "h2load SecureRoute warm": lambda: h2load(
                    ctx, port, "SecureRoute", token, pids=pids, name=f"warm-{round_index}"
                ),
            },
        )
        # Half the load Health saturated at, Health and SecureRoute at a quarter each, at once.
        together = h2load_together(
            ctx,
            port,
            ("Health", "SecureRoute"),
            token,
            pids=pids,
            name=f"half-{round_index}",
            total_rps=results["h2load Health"].rps / 2,
        )
        for scenario, result in zip(HALF_LOAD_SCENARIOS, together, strict=True):
            results[scenario] = dataclasses.replace(result, note=_TOGETHER_NOTE)
    if ctx.tools.node is not None:
        # A pool sized from Health's rate; the cold run and Health share it (Health is public: it
        # never verifies, so never caches, a token, and each call still carries a fresh one).
        estimate = results["h2load Health"].rps if "h2load Health" in results else 6000.0
        pool = ctx.token_file(
            cold_pool_name(round_index), ctx.mint.distinct(LOAD_ALGORITHM, ctx.pool_size(estimate))
        )
        results |= _in_turn(
            round_index,
            {
                "h2grpc Health": lambda: h2grpc(ctx, port, "Health", pids=pids, tokens=pool),
                "h2grpc SecureRoute cold": lambda: h2grpc(ctx, port, "SecureRoute", pids=pids, tokens=pool),
                "h2grpc SecureRoute warm": lambda: h2grpc(ctx, port, "SecureRoute", pids=pids, token=token),
            },
        )
    # Reports read scenarios in SCENARIOS order, whatever order they ran in.
    return {name: results[name] for name in SCENARIOS if name in results}
