"""Everything one run measured, as plain data for the report.

Usage:
    results = BenchResults(facts=machine_facts(), options=options)
    results.grpc.append(run_grpc_round(ctx, 0))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.inside import InsideRun
from bench.measure import LoadResult
from bench.memory import MemoryFigures
from bench.options import BenchOptions
from bench.storm import StormRound
from bench.tools import MachineFacts

__all__ = ["BenchResults"]


@dataclass(slots=True)
class BenchResults:
    facts: MachineFacts
    options: BenchOptions
    #: algorithm -> metric -> per-round microseconds.
    validation: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    #: In-process Python cost per call: piece -> per-round microseconds.
    pieces: dict[str, list[float]] = field(default_factory=dict)
    #: One dict per round: scenario -> result.
    grpc: list[dict[str, LoadResult]] = field(default_factory=list)
    #: Section 2's breakdown inside a timed service: "warm"/"cold" -> one run.
    inside: dict[str, InsideRun] = field(default_factory=dict)
    http: list[dict[str, LoadResult]] = field(default_factory=list)
    storm: list[StormRound] = field(default_factory=list)
    memory: MemoryFigures | None = None
    workers_available: dict[str, bool] = field(default_factory=dict)
    workers: dict[str, dict[int, LoadResult]] = field(default_factory=dict)
    #: Section -> why it did not run.
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
