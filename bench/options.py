"""The benchmark's knobs: one frozen dataclass, with a full and a quick preset.

Usage:
    options = BenchOptions.full()                    # or BenchOptions.quick()
    options = dataclasses.replace(options, rounds=5)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["SECTIONS", "BenchOptions"]

#: Every part of the run, in the order it runs.
SECTIONS: tuple[str, ...] = ("validation", "grpc", "http", "storm", "memory", "workers")


@dataclass(frozen=True, kw_only=True, slots=True)
class BenchOptions:
    """How long and how hard each part runs."""

    #: Rounds of every side-by-side comparison; figures are medians over rounds.
    rounds: int = 5
    #: Measured seconds of each load run (after ``warmup_s``).
    load_duration_s: float = 5.0
    #: Unmeasured seconds before each load run.
    warmup_s: float = 1.0
    #: Distinct tokens per algorithm for the cold validation micro-benchmark.
    validation_tokens: int = 2000
    #: Calls of the warm (cache hit) validation loop.
    warm_iterations: int = 50_000
    #: h2load: connections, and concurrent streams on each.
    h2_connections: int = 4
    h2_streams: int = 8
    #: The Python gRPC load generator: channels (each its own connection) and concurrent calls.
    client_channels: int = 4
    client_concurrency: int = 32
    #: wrk: connections (one thread).
    http_connections: int = 32
    #: Concurrent requests with unknown kids in one JWKS storm.
    storm_requests: int = 1000
    #: Requests with distinct tokens per memory step (RSS is read after 1x and 2x this many).
    memory_step_requests: int = 50_000
    #: Parts to run (a subset of SECTIONS).
    sections: tuple[str, ...] = SECTIONS
    #: Where the report goes.
    output: Path = Path("docs/benchmarks.md")
    #: Install missing tools (apt-get h2load/wrk, npm ci for the Express peer).
    install: bool = True
    #: Log level of the service and facade under load: the programs' own default, so the figures
    #: are what a user gets (issue 22).
    log_level: str = "INFO"
    #: A smoke run (``--quick``): the report says its figures are not to be quoted.
    smoke: bool = False

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError("rounds: must be at least 1")
        if self.load_duration_s <= 0 or self.warmup_s < 0:
            raise ValueError("duration: must be positive (warm-up not negative)")
        unknown = sorted(set(self.sections) - set(SECTIONS))
        if unknown:
            raise ValueError(
                f"only: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}"
            )

    @classmethod
    def full(cls) -> BenchOptions:
        return cls()

    @classmethod
    def quick(cls) -> BenchOptions:
        """One short round of everything: a smoke run, not figures to quote."""
        return cls(
            rounds=1,
            load_duration_s=1.0,
            warmup_s=0.5,
            validation_tokens=100,
            warm_iterations=5_000,
            storm_requests=200,
            memory_step_requests=2_000,
            smoke=True,
        )
