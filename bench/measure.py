"""One load run, measured: the generator's figures plus the server's CPU time per request.

Requests per second move with whatever else the (shared) machine does; the servers' CPU time
per request moves much less, so every run records both. CPU is sampled on a thread over the
middle 80 % of the measured window, away from start-up and shutdown, and divided by the
request rate the generators saw (several may run at once: ``run_generators``).

Usage:
    run = run_generator(argv, pids=[service.pid], warmup_s=1, duration_s=5, parse=parse_h2load)
    run.rps, run.p99_us, run.server_cpu_us
    health, secure = run_generators([(argv_a, parse_a), (argv_b, parse_b)], pids=..., ...)  # at once
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bench.procfs import cpu_s

__all__ = ["LoadResult", "run_generator", "run_generators"]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run measured. ``errors`` counts calls that did not succeed."""

    requests: int
    rps: float
    p50_us: float
    p99_us: float
    errors: int
    #: CPU time the measured server processes spent per request, microseconds (None: not measured).
    server_cpu_us: float | None = None
    #: The token pool ran out before the end: no token was reused, but the generator idled for
    #: the rest of the window, so req/s is a lower bound.
    tokens_exhausted: bool = False
    note: str = ""


class _CpuWindow:
    """Samples the CPU time of ``pids`` at two moments; the rate between them is CPU seconds per second."""

    def __init__(self, pids: Sequence[int], first_at: float, last_at: float) -> None:
        self._pids = list(pids)
        self._times = (first_at, last_at)
        self._samples: list[tuple[float, float]] = []
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _total(self) -> float:
        total = 0.0
        for pid in self._pids:
            try:
                total += cpu_s(pid)
            except OSError:
                return float("nan")
        return total

    def _sample(self) -> None:
        for moment in self._times:
            time.sleep(max(0.0, moment - time.monotonic()))
            self._samples.append((time.monotonic(), self._total()))

    def start(self) -> None:
        self._thread.start()

    def cpu_per_s(self) -> float | None:
        self._thread.join(timeout=5)
        if len(self._samples) != 2:
            return None
        (t0, c0), (t1, c1) = self._samples
        return (c1 - c0) / (t1 - t0) if t1 > t0 else None


def run_generator(
    argv: Sequence[str],
    *,
    pids: Sequence[int],
    warmup_s: float,
    duration_s: float,
    parse: Callable[[str], LoadResult],
    timeout_s: float | None = None,
) -> LoadResult:
    """Run a load generator to completion; return its parsed figures with the servers' CPU per request."""
    (result,) = run_generators(
        [(argv, parse)], pids=pids, warmup_s=warmup_s, duration_s=duration_s, timeout_s=timeout_s
    )
    return result


def run_generators(
    generators: Sequence[tuple[Sequence[str], Callable[[str], LoadResult]]],
    *,
    pids: Sequence[int],
    warmup_s: float,
    duration_s: float,
    timeout_s: float | None = None,
) -> list[LoadResult]:
    """Run several load generators at once, each ``(argv, parse)``, to completion; return their parsed
    figures in the same order. They load the same servers in the same window, so each result carries
    the servers' CPU per request of all of them together (CPU per second over their summed req/s)."""
    began = time.monotonic()
    window = _CpuWindow(pids, began + warmup_s + 0.1 * duration_s, began + warmup_s + 0.9 * duration_s)
    window.start()
    deadline = began + (timeout_s or (warmup_s + duration_s) * 3 + 60)
    processes = [
        subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
        for argv, _ in generators
    ]
    try:
        outputs = [
            process.communicate(timeout=max(0.0, deadline - time.monotonic())) for process in processes
        ]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    results = []
    for (argv, parse), process, (stdout, stderr) in zip(generators, processes, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({process.returncode}): {stderr.strip()[-500:]}")
        results.append(parse(stdout))
    cpu_per_s = window.cpu_per_s()
    total_rps = sum(result.rps for result in results)
    if cpu_per_s is None or total_rps <= 0 or any(result.tokens_exhausted for result in results):
        return results  # idle time after a pool ran out would skew CPU per request
    return [replace(result, server_cpu_us=cpu_per_s / total_rps * 1e6) for result in results]
