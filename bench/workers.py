"""1 worker vs 2: only when the service or the facade has a ``--workers`` flag.

Usage:
    available = workers_available()          # {"service": False, "facade": False}
    figures = run_workers(ctx, available)    # {"service": {1: LoadResult, 2: LoadResult}}
"""

from __future__ import annotations

import time

from bench.context import BenchContext
from bench.grpc_load import check_grpc_call, h2load
from bench.http_load import wrk
from bench.measure import LoadResult
from bench.stack import supports_flag

__all__ = ["run_workers", "workers_available"]


def workers_available() -> dict[str, bool]:
    return {
        "service": supports_flag("service", "--workers"),
        "facade": supports_flag("http_facade", "--workers"),
    }


def _wait_every_worker(ctx: BenchContext, port: int, timeout_s: float = 30.0) -> None:
    """Until several fresh connections in a row (spread over the workers by SO_REUSEPORT) get
    SecureRoute answered OK: a worker still loading its keys answers UNAVAILABLE, which h2load,
    seeing only HTTP statuses, would count as a fast success."""
    if ctx.tools.nghttp is None:
        time.sleep(3)
        return
    frame = ctx.workdir / "grpc-empty-frame.bin"
    deadline, in_a_row = time.monotonic() + timeout_s, 0
    while in_a_row < 8 and time.monotonic() < deadline:
        ok = check_grpc_call(ctx.tools.nghttp, port, "SecureRoute", ctx.warm_token, frame) is None
        in_a_row = in_a_row + 1 if ok else 0
        if not ok:
            time.sleep(0.2)


def run_workers(ctx: BenchContext, available: dict[str, bool]) -> dict[str, dict[int, LoadResult]]:
    """SecureRoute warm with 1 and 2 workers (a separate server for each count)."""
    figures: dict[str, dict[int, LoadResult]] = {}
    if available.get("service") and ctx.tools.h2load is not None:
        figures["service"] = {}
        for count in (1, 2):
            server = ctx.stack.start_service(ctx.issuer.url, "--workers", str(count))
            _wait_every_worker(ctx, server.port)
            figures["service"][count] = h2load(
                ctx, server.port, "SecureRoute", ctx.warm_token, pids=[server.pid], name=f"workers-{count}"
            )
            server.stop()
    if available.get("facade") and ctx.tools.wrk is not None and ctx.service is not None:
        figures["facade"] = {}
        warm_file = ctx.token_file("warm", [ctx.warm_token])
        for count in (1, 2):
            server = ctx.stack.start_facade(ctx.service.port, "--workers", str(count))
            figures["facade"][count] = wrk(
                ctx, f"http://127.0.0.1:{server.port}/secure-route", warm_file, pids=[server.pid]
            )
            server.stop()
    return figures
