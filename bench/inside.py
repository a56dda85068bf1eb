"""Where a SecureRoute call's time goes inside the running service, piece by piece.

Starts a second service under ``bench.timed_service`` (the same service with a timer around
each piece of the request path), runs one warm load (h2load, one reused token) and one cold
load (h2grpc, a fresh token per call) against it, and reads each piece's mean per call. It
explains the gap between the in-process figures and the ratios under load: the same Python
costs several times more inside a busy server than in a tight loop. One run of each, not a
median of rounds: this is a breakdown, not a target.

Usage:
    runs = run_inside(ctx, cold_tokens)      # {"warm": InsideRun, "cold": InsideRun}
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.grpc_load import h2grpc, h2load
from bench.measure import LoadResult
from bench.stack import Server
from bench.timed_service import PIECES

__all__ = ["InsideRun", "read_timings", "run_inside"]

_DUMP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class InsideRun:
    load: LoadResult
    #: Protected calls the timers saw (the load's calls, warm-up included).
    calls: int
    #: Piece label (``bench.timed_service.PIECES``) -> mean µs per protected call.
    us_per_call: dict[str, float]


def read_timings(server: Server, path: Path, serial: int) -> dict[str, Any]:
    """Ask the timed service for its totals (SIGUSR1) and wait for dump number ``serial``."""
    server.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + _DUMP_TIMEOUT_S
    while time.monotonic() < deadline:
        server.check_alive()
        if path.exists():
            report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if report["serial"] == serial:
                return report
        time.sleep(0.05)
    raise RuntimeError(f"the timed service wrote no timings:\n{server.log_tail()}")


def _per_call(report: dict[str, Any]) -> dict[str, float]:
    calls = max(1, int(report["calls"]))
    return {label: report["ns"].get(label, 0) / calls / 1000 for label, _, _ in PIECES}


def run_inside(ctx: BenchContext, cold_tokens: Path) -> dict[str, InsideRun]:
    """One warm and one cold run against a timed service; ``cold_tokens`` must be new to it."""
    timings = ctx.workdir / "inside-timings.json"
    server = ctx.stack.start_service(
        ctx.issuer.url, launcher=("bench.timed_service", "--timings-file", str(timings)), name="timed-service"
    )
    port, pids = server.port, [server.pid]
    loads: dict[str, Callable[[], LoadResult]] = {
        "warm": lambda: h2load(ctx, port, "SecureRoute", ctx.warm_token, pids=pids, name="inside-warm"),
        "cold": lambda: h2grpc(ctx, port, "SecureRoute", pids=pids, tokens=cold_tokens),
    }
    runs: dict[str, InsideRun] = {}
    serial = 0
    try:
        for name, load in loads.items():
            serial += 1
            read_timings(server, timings, serial)  # drop what came before (start-up, the previous run)
            result = load()
            serial += 1
            report = read_timings(server, timings, serial)
            runs[name] = InsideRun(load=result, calls=int(report["calls"]), us_per_call=_per_call(report))
    finally:
        server.stop()
    return runs
