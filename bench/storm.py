"""JWKS storm: 1,000 concurrent calls with random unknown kids, while valid calls keep flowing.

An unknown kid makes jwt_authn refresh the key set on demand. The storm checks that 1,000 of
them at once cost the issuer at most one refresh (single flight, then a cooldown and a
negative cache), and what they do to the latency of valid calls running at the same time.

Each round runs the same light stream of valid calls twice (h2load, one reused token): once
alone (baseline), once with the storm fired into its middle by ``bench.grpc_client``.
The storm's p99 is taken over the valid calls that started while the burst was in flight
(h2load's per-request log has epoch timestamps); the issuer's counters are read directly.

Usage:
    rounds = [run_storm_round(ctx, i) for i in range(3)]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.context import BenchContext
from bench.stack import REPO_ROOT
from bench.stats import percentile

__all__ = ["StormRound", "run_storm_round"]

_SERVICE = "/secureroute.v1.SecureRouteService/"
#: The valid stream: light, so its latency shows the storm rather than its own queueing.
_VALID_CONNECTIONS = 2
_VALID_STREAMS = 2
#: The burst client needs about a second to start (Python + grpc imports, connecting).
_BURST_LEAD_S = 2.0


@dataclass(frozen=True, slots=True)
class StormRound:
    baseline_p50_us: float
    baseline_p99_us: float
    storm_p50_us: float
    storm_p99_us: float
    #: Valid calls that started while the burst was in flight (the storm percentiles' sample).
    valid_in_window: int
    valid_errors: int
    burst_requests: int
    burst_seconds: float
    burst_codes: dict[str, int]
    discovery_fetches: int
    jwks_fetches: int


def _h2load_argv(ctx: BenchContext, port: int, seconds: float, log_path: Path) -> list[str]:
    assert ctx.tools.h2load is not None
    return [
        ctx.tools.h2load,
        "-t1",
        f"-c{_VALID_CONNECTIONS}",
        f"-m{_VALID_STREAMS}",
        f"-D{round(seconds * 1000)}ms",
        "--warm-up-time=500ms",
        "-d",
        str(ctx.workdir / "grpc-empty-frame.bin"),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        "-H",
        f"authorization: Bearer {ctx.warm_token}",
        f"--log-file={log_path}",
        f"http://127.0.0.1:{port}{_SERVICE}SecureRoute",
    ]


def _log_entries(log_path: Path) -> list[tuple[float, int, float]]:
    """(start epoch seconds, HTTP status, latency microseconds) of every logged request."""
    entries = []
    with open(log_path, encoding="ascii") as log:
        for line in log:
            fields = line.split("\t")
            if len(fields) >= 3:
                entries.append((int(fields[0]) / 1e6, int(fields[1]), float(fields[2])))
    return entries


def run_storm_round(ctx: BenchContext, round_index: int) -> StormRound:
    assert ctx.service is not None and ctx.tools.h2load is not None
    port = ctx.service.port
    seconds = max(3.0, ctx.options.load_duration_s)
    storm_tokens = ctx.token_file(
        f"storm-{round_index}", ctx.mint.distinct("ES256", ctx.options.storm_requests, unknown_kids=True)
    )

    baseline_log = ctx.workdir / f"storm-baseline-{round_index}.log"
    subprocess.run(_h2load_argv(ctx, port, seconds, baseline_log), capture_output=True, check=True)  # noqa: S603
    baseline = [latency for _, _, latency in _log_entries(baseline_log)]

    fetches_before = ctx.issuer.fetches()
    storm_log = ctx.workdir / f"storm-{round_index}.log"
    fire_at = time.time() + _BURST_LEAD_S + 0.5 + seconds / 3
    valid = subprocess.Popen(  # noqa: S603
        _h2load_argv(ctx, port, seconds + _BURST_LEAD_S, storm_log),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    burst = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "bench.grpc_client",
            "--target",
            f"127.0.0.1:{port}",
            "--method",
            "SecureRoute",
            "--tokens",
            str(storm_tokens),
            "--start-at",
            f"{fire_at:.6f}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=True,
    )
    valid.wait(timeout=seconds * 3 + 60)
    # Let a refresh started by the storm finish before the counters are read.
    time.sleep(0.5)
    discovery_after, jwks_after = ctx.issuer.fetches()
    report = json.loads(burst.stdout.strip().splitlines()[-1])
    began, ended = float(report["started_at"]), float(report["ended_at"])
    entries = _log_entries(storm_log)
    in_window = [latency for start, _, latency in entries if began <= start <= ended]
    return StormRound(
        baseline_p50_us=percentile(baseline, 50),
        baseline_p99_us=percentile(baseline, 99),
        storm_p50_us=percentile(in_window, 50),
        storm_p99_us=percentile(in_window, 99),
        valid_in_window=len(in_window),
        valid_errors=sum(1 for _, status, _ in entries if status != 200),
        burst_requests=int(report["requests"]),
        burst_seconds=ended - began,
        burst_codes={str(k): int(v) for k, v in report["codes"].items()},
        discovery_fetches=discovery_after - fetches_before[0],
        jwks_fetches=jwks_after - fetches_before[1],
    )
