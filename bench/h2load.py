"""h2load (nghttp2) as a gRPC load generator, and nghttp to check the very request it will repeat.

h2load sends one fixed header set, so it runs one method with one reused token (warm). gRPC
errors are HTTP 200 with a ``grpc-status`` trailer, which h2load does not read: before any run,
``check_call`` makes the same request once with nghttp and wants ``grpc-status: 0``. Latency
percentiles come from h2load's per-request log (start time, HTTP status, latency).

Usage:
    problem = check_call(tools.nghttp, port, "SecureRoute", token, frame_file(workdir))
    result = run(ctx, port, "SecureRoute", token, pids=[pid], name="warm-1")
    health, secure = run(ctx, port, ("Health", "SecureRoute"), token, pids=[pid], name="half", total_rps=2000)
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.context import BenchContext
from bench.measure import LoadResult, percentile, run_generators

__all__ = ["SERVICE", "check_call", "frame_file", "log_entries", "run", "stream_argv"]

SERVICE = "/secureroute.v1.SecureRouteService/"
#: The 5-byte gRPC frame of an empty message: not compressed, length 0.
_GRPC_FRAME = b"\x00\x00\x00\x00\x00"


def frame_file(workdir: Path) -> Path:
    path = workdir / "grpc-empty-frame.bin"
    path.write_bytes(_GRPC_FRAME)
    return path


def _headers(token: str) -> list[str]:
    headers = ("content-type: application/grpc", "te: trailers", f"authorization: Bearer {token}")
    return [part for header in headers for part in ("-H", header)]


def check_call(nghttp: str, port: int, method: str, token: str, frame: Path) -> str | None:
    """None when one call with exactly h2load's request ends in grpc-status 0, else what went wrong."""
    completed = subprocess.run(  # noqa: S603
        [nghttp, "-v", "-d", str(frame), *_headers(token), f"http://127.0.0.1:{port}{SERVICE}{method}"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    found = re.findall(r"grpc-status: (\d+)", completed.stdout.decode("latin-1"))
    if found == ["0"]:
        return None
    return f"{method}: grpc-status {found or 'missing'} (nghttp exit {completed.returncode})"


def _ms(seconds: float) -> str:
    """h2load's duration syntax: whole numbers with a unit."""
    return f"{max(1, round(seconds * 1000))}ms"


def stream_argv(
    ctx: BenchContext, port: int, method: str, token: str, log_path: Path, *,
    connections: int, streams: int, duration_s: float, warmup_s: float, total_rps: float | None = None,
) -> list[str]:  # fmt: skip
    """h2load's command line: ``connections`` x ``streams`` of one call, as fast as it can or at
    ``total_rps`` requests per second in all, logging every request to ``log_path``."""
    assert ctx.tools.h2load is not None
    rate = [f"--rps={max(1, round(total_rps / connections))}"] if total_rps else []
    return [
        ctx.tools.h2load, "-t1", f"-c{connections}", f"-m{streams}", f"-D{_ms(duration_s)}",
        f"--warm-up-time={_ms(warmup_s)}", *rate, "-d", str(frame_file(ctx.workdir)), *_headers(token),
        f"--log-file={log_path}", f"http://127.0.0.1:{port}{SERVICE}{method}",
    ]  # fmt: skip


def log_entries(log_path: Path) -> list[tuple[float, int, float]]:
    """(start epoch seconds, HTTP status, latency microseconds) of every logged request."""
    with open(log_path, encoding="ascii") as log:
        rows = [line.split("\t") for line in log]
    return [(int(f[0]) / 1e6, int(f[1]), float(f[2])) for f in rows if len(f) >= 3]


def _parser(log_path: Path) -> Callable[[str], LoadResult]:
    def parse(output: str) -> LoadResult:
        rate = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", output)
        counts = re.search(
            r"requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, "
            r"(\d+) timeout",
            output,
        )
        statuses = re.search(r"status codes: (\d+) 2xx", output)
        if rate is None or counts is None or statuses is None:
            raise RuntimeError(f"unexpected h2load output:\n{output[-800:]}")
        done = int(counts.group(1))
        failed = sum(int(counts.group(i)) for i in (2, 3, 4)) + done - int(statuses.group(1))
        latencies = [latency for _, _, latency in log_entries(log_path)]
        return LoadResult(done, float(rate.group(1)), percentile(latencies, 50), percentile(latencies, 99),
                          failed)  # fmt: skip

    return parse


def run(
    ctx: BenchContext, port: int, methods: str | Sequence[str], token: str, *, pids: list[int], name: str,
    total_rps: float | None = None,
) -> list[LoadResult]:  # fmt: skip
    """One h2load per method, all at once (sharing ``total_rps`` evenly when given), for the run's
    duration: methods run together are measured in one window, so a stall hits them alike."""
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    options, generators = ctx.options, []
    for method in methods:
        log_path = ctx.workdir / f"h2load-{name}-{method}.log"
        share = total_rps / len(methods) if total_rps else None
        argv = stream_argv(
            ctx, port, method, token, log_path, connections=options.h2_connections,
            streams=options.h2_streams, duration_s=options.load_duration_s, warmup_s=options.warmup_s,
            total_rps=share,
        )  # fmt: skip
        generators.append((argv, _parser(log_path)))
    return run_generators(
        generators, pids=pids, warmup_s=options.warmup_s, duration_s=options.load_duration_s
    )
