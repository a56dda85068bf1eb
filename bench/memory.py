"""Resident memory of the service and the facade under a stream of distinct tokens.

Every token is new, so each one lands in the service's verified-token cache; the caches are
bounded, so memory must level off. The facade is driven with wrk (each token once, the run
stops when they run out), which sends every request on to the service; RSS (VmRSS) of both
processes is read before, after ``memory_step_requests`` and after twice that. ES256 tokens
are used because they are quick to sign; the cache holds any token alike.

Usage:
    figures = run_memory(ctx)
    figures.growth("service")        # RSS growth from step 1 to step 2, as a fraction
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import wrk
from bench.context import BenchContext
from bench.measure import rss_kib

__all__ = ["MemoryFigures", "run_memory"]

_PROCESSES = ("service", "facade")
_MAX_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class MemoryFigures:
    step_requests: int
    #: process -> RSS KiB before, after one step, after two steps.
    rss_kib: dict[str, tuple[int, int, int]]
    requests_sent: tuple[int, int]
    errors: tuple[int, int]
    rps: tuple[float, float]

    def growth(self, process: str) -> float:
        _, first, second = self.rss_kib[process]
        return (second - first) / first


def _rss(ctx: BenchContext) -> dict[str, int]:
    return {process: rss_kib(ctx.servers[process].pid) for process in _PROCESSES}


def _send_all(ctx: BenchContext, tokens: list[str], rate: float, name: str) -> tuple[int, int, float]:
    """Send every token once through the facade; returns (sent, failed, last measured rate).

    wrk runs for a fixed time even after its script stops the thread, so each run is sized from
    the rate seen so far; tokens a run did not reach go to the next one (a few in flight at the
    end of a timed-out run may be sent twice: a handful of cache hits among tens of thousands).
    """
    url = f"http://127.0.0.1:{ctx.servers['facade'].port}/secure-route"
    pids = [ctx.servers["facade"].pid, ctx.servers["service"].pid]
    remaining, sent, failed = tokens, 0, 0
    for attempt in range(_MAX_ATTEMPTS):
        if not remaining:
            break
        seconds = max(3.0, len(remaining) / max(rate, 50.0) * 1.1)
        path = ctx.token_file(f"memory-{name}-{attempt}", remaining)
        run = wrk.run(ctx, url, path, pids=pids, duration_s=seconds)
        # Out of tokens: every one was sent (wrk drops the last few responses when it stops).
        done = len(remaining) if run.tokens_exhausted else min(run.requests, len(remaining))
        sent, failed = sent + done, failed + run.errors
        if not run.tokens_exhausted:
            rate = max(done / seconds, 1.0)
        remaining = remaining[done:]
    return sent, failed, rate


def run_memory(ctx: BenchContext, rate_estimate: float | None = None) -> MemoryFigures:
    """Two steps of ``memory_step_requests`` distinct tokens through the facade, RSS after each."""
    step = ctx.options.memory_step_requests
    rate = rate_estimate or 500.0
    readings = [_rss(ctx)]
    sent, errors, rates = [], [], []
    for index in range(2):
        tokens = ctx.mint.distinct("ES256", step)
        count, failed, rate = _send_all(ctx, tokens, rate, str(index))
        sent.append(count)
        errors.append(failed)
        rates.append(rate)
        readings.append(_rss(ctx))
    return MemoryFigures(
        step_requests=step,
        rss_kib={p: (readings[0][p], readings[1][p], readings[2][p]) for p in _PROCESSES},
        requests_sent=(sent[0], sent[1]),
        errors=(errors[0], errors[1]),
        rps=(rates[0], rates[1]),
    )
