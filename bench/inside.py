"""Where a SecureRoute call's time goes inside the running service, piece by piece.

Starts ``python -m bench.variants timed`` (the service with a timer around each piece of the
request path), runs one warm load (h2load, one reused token) and one cold load (h2grpc, a fresh
token per call) against it, and reads each piece's mean per call. One run of each, not a median of
rounds: a breakdown, not a target.

Usage:
    runs = run_inside(ctx, cold_tokens)      # {"warm": InsideRun, "cold": InsideRun}
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import h2grpc, h2load
from bench.context import BenchContext
from bench.measure import LoadResult
from bench.stack import check_alive
from bench.variants import PIECES
from dev_stack.children import Child

__all__ = ["InsideRun", "read_timings", "run_inside"]


@dataclass(frozen=True, slots=True)
class InsideRun:
    load: LoadResult
    #: Protected calls the timers saw (the load's calls, warm-up included).
    calls: int
    #: Piece label (``bench.variants.PIECES``) -> mean µs per protected call.
    us_per_call: dict[str, float]


def read_timings(server: Child, path: Path, serial: int) -> dict[str, Any]:
    """Ask the timed service for its totals (SIGUSR1) and wait for dump number ``serial``."""
    server.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        check_alive(server)
        if path.exists():
            report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if report["serial"] == serial:
                return report
        time.sleep(0.05)
    raise RuntimeError(f"the timed service wrote no timings:\n{server.tail()}")


def run_inside(ctx: BenchContext, cold_tokens: Path) -> dict[str, InsideRun]:
    """One warm and one cold run against a timed service; ``cold_tokens`` must be new to it."""
    timings = ctx.workdir / "inside-timings.json"
    launcher = ("bench.variants", "timed", "--timings-file", str(timings))
    server = ctx.stack.start_grpc("timed-service", ctx.stack.service_argv(launcher=launcher))
    port, pids = server.port, [server.pid]
    loads: dict[str, Callable[[], LoadResult]] = {
        "warm": lambda: h2load.run(ctx, port, "SecureRoute", ctx.warm_token, pids=pids, name="inside")[0],
        "cold": lambda: h2grpc.run(ctx, port, "SecureRoute", pids=pids, tokens=cold_tokens),
    }
    runs: dict[str, InsideRun] = {}
    try:
        for serial, (name, load) in enumerate(loads.items()):
            read_timings(server, timings, 2 * serial + 1)  # drop what came before
            result = load()
            report = read_timings(server, timings, 2 * serial + 2)
            calls = max(1, int(report["calls"]))
            per_call = {label: report["ns"].get(label, 0) / calls / 1000 for label, _, _ in PIECES}
            runs[name] = InsideRun(load=result, calls=int(report["calls"]), us_per_call=per_call)
    finally:
        asyncio.run(server.stop())
    return runs
