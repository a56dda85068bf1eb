"""1 worker vs 2, SecureRoute warm: the service (h2load) and the facade (wrk), each with ``--workers``.

Usage:
    figures = run_workers(ctx)    # {"service": {1: LoadResult, 2: LoadResult}, "facade": {...}}
"""

from __future__ import annotations

import asyncio
import time

from bench import h2load, wrk
from bench.context import BenchContext
from bench.measure import LoadResult

__all__ = ["run_workers"]


def _wait_every_worker(ctx: BenchContext, port: int, timeout_s: float = 30.0) -> None:
    """Until several fresh connections in a row (spread over the workers by SO_REUSEPORT) get
    SecureRoute answered OK: a worker still loading its keys answers UNAVAILABLE, which h2load,
    seeing only HTTP statuses, would count as a fast success."""
    assert ctx.tools.nghttp is not None
    frame = h2load.frame_file(ctx.workdir)
    deadline, in_a_row = time.monotonic() + timeout_s, 0
    while in_a_row < 8 and time.monotonic() < deadline:
        ok = h2load.check_call(ctx.tools.nghttp, port, "SecureRoute", ctx.warm_token, frame) is None
        in_a_row = in_a_row + 1 if ok else 0
        if not ok:
            time.sleep(0.2)


def run_workers(ctx: BenchContext) -> dict[str, dict[int, LoadResult]]:
    """SecureRoute warm with 1 and 2 workers (a separate server for each count)."""
    stack, figures = ctx.stack, dict[str, dict[int, LoadResult]]()
    warm_file = ctx.token_file("warm", [ctx.warm_token])
    backend = f"127.0.0.1:{ctx.servers['service'].port}"
    for process in ("service", "facade"):
        figures[process] = {}
        for count in (1, 2):
            name = f"{process}-workers-{count}"
            if process == "service":
                server = stack.start_grpc(name, stack.service_argv("--workers", str(count)))
                _wait_every_worker(ctx, server.port)
                run = h2load.run(
                    ctx, server.port, "SecureRoute", ctx.warm_token, pids=[server.pid], name=name
                )[0]
            else:
                server = stack.start_http(name, stack.facade_argv(backend, "--workers", str(count)))
                run = wrk.run(
                    ctx, f"http://127.0.0.1:{server.port}/secure-route", warm_file, pids=[server.pid]
                )
            figures[process][count] = run
            asyncio.run(server.stop())
    return figures
