"""One load run, measured, and the small statistics the report needs.

Requests per second move with whatever else the (shared) machine does; the servers' CPU time per
request moves much less, so every run records both. CPU is read from /proc over the middle 80 %
of the measured window, away from start-up and shutdown, and divided by the request rate the
generators saw (several may run at once, loading the same servers in the same window).

Every comparison runs its sides back to back, in the order ``in_turn`` gives: the one order
scheme of the whole benchmark, so no side of a ratio is always the one measured first.

Usage:
    health, secure = run_generators([(argv_a, parse_a), (argv_b, parse_b)], pids=[pid], warmup_s=1,
                                    duration_s=5)
    results = in_turn(round_index, {"a": run_a, "b": run_b})
    percentile(latencies_us, 99); median_of(values); ratio_of(top, bottom)
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

__all__ = [
    "LoadResult",
    "cpu_s",
    "in_turn",
    "median_of",
    "percentile",
    "ratio_of",
    "rss_kib",
    "run_generators",
]

_T = TypeVar("_T")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


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


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return float(ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1])


def median_of(values: Iterable[float | None]) -> float | None:
    """The median of the values that were measured (None and NaN are skipped)."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(present) if present else None


def ratio_of(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0 or math.isnan(numerator):
        return None
    return numerator / denominator


def in_turn(round_index: int, runs: dict[str, Callable[[], _T]]) -> dict[str, _T]:
    """Run ``runs`` rotated by ``round_index`` (two alternate; three each go first, second and last
    over three rounds), so a machine that gets busier or quieter favours no side. Results come
    back in the declared order, whatever order they ran in."""
    names = list(runs)
    shift = round_index % len(names) if names else 0
    done = {name: runs[name]() for name in names[shift:] + names[:shift]}
    return {name: done[name] for name in names}


def rss_kib(pid: int) -> int:
    """Resident set size (VmRSS from /proc/PID/status), KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU time of ``pid`` so far, seconds (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # The command name (field 2) may hold spaces; the fields after its closing ")" do not.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def _sample_cpu(pids: Sequence[int], moments: Sequence[float], samples: list[tuple[float, float]]) -> None:
    for moment in moments:
        time.sleep(max(0.0, moment - time.monotonic()))
        try:
            samples.append((time.monotonic(), sum(cpu_s(pid) for pid in pids)))
        except OSError:
            return


def run_generators(
    generators: Sequence[tuple[Sequence[str], Callable[[str], LoadResult]]],
    *,
    pids: Sequence[int],
    warmup_s: float,
    duration_s: float,
) -> list[LoadResult]:
    """Run load generators at once, each ``(argv, parse)``, to completion; return their parsed figures
    in order, each with the servers' CPU per request of all of them together (CPU per second over
    their summed req/s)."""
    began = time.monotonic()
    samples: list[tuple[float, float]] = []
    moments = (began + warmup_s + 0.1 * duration_s, began + warmup_s + 0.9 * duration_s)
    sampler = threading.Thread(target=_sample_cpu, args=(pids, moments, samples), daemon=True)
    sampler.start()
    deadline = began + (warmup_s + duration_s) * 3 + 60
    processes = [
        subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # noqa: S603
        for argv, _ in generators
    ]
    try:
        outputs = [p.communicate(timeout=max(0.0, deadline - time.monotonic())) for p in processes]
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
    sampler.join(timeout=5)
    total_rps = sum(result.rps for result in results)
    if len(samples) != 2 or total_rps <= 0 or any(result.tokens_exhausted for result in results):
        return results  # idle time after a pool ran out would skew CPU per request
    (t0, c0), (t1, c1) = samples
    cpu_us = (c1 - c0) / (t1 - t0) / total_rps * 1e6
    return [replace(result, server_cpu_us=cpu_us) for result in results]
