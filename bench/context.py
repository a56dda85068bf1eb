"""What a run holds: its context (options, tools, the stack, the token mint, the servers) and its results.

Usage:
    ctx = BenchContext(options=..., tools=..., workdir=..., stack=..., mint=...)
    path = ctx.token_file("grpc-cold-1", ctx.mint.distinct(LOAD_ALGORITHM, 10_000))
    results = BenchResults(facts=machine_facts(), options=options)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.measure import LoadResult
from bench.options import BenchOptions
from bench.stack import Stack
from bench.tokens import TokenMint, write_token_file
from bench.tools import MachineFacts, Tools
from dev_stack.children import Child

if TYPE_CHECKING:
    from bench.inside import InsideRun
    from bench.memory import MemoryFigures
    from bench.storm import StormRound

__all__ = ["LOAD_ALGORITHM", "BenchContext", "BenchResults"]

#: The algorithm of the tokens under load: RS256, what most identity providers (and the
#: original Express system's jwks-rsa setup) sign with.
LOAD_ALGORITHM = "RS256"

#: One round of load runs: scenario name ("service SecureRoute warm", "express /health") -> result.
Round = dict[str, LoadResult]


@dataclass(slots=True)
class BenchContext:
    options: BenchOptions
    tools: Tools
    workdir: Path
    stack: Stack
    mint: TokenMint
    #: Running servers by system name ("service", "facade", "express", ...).
    servers: dict[str, Child] = field(default_factory=dict)
    #: The service's Unix socket (the HTTP section's second facade reaches it there).
    service_socket: Path | None = None
    #: The one token every warm run reuses ("the same token" for every system).
    warm_token: str = ""
    notes: list[str] = field(default_factory=list)

    def token_file(self, name: str, tokens: list[str]) -> Path:
        return write_token_file(self.workdir / f"{name}.tokens", tokens)

    def pool_size(self, rps_estimate: float) -> int:
        """Tokens enough for one run at ``rps_estimate``, with room for a quieter machine: a pool
        that runs out cuts the run short (and is flagged), it never sends a token twice."""
        return int(rps_estimate * (self.options.warmup_s + self.options.load_duration_s) * 2.0) + 1000


@dataclass(slots=True)
class BenchResults:
    facts: MachineFacts
    options: BenchOptions
    #: algorithm -> metric -> per-round microseconds.
    validation: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    #: In-process Python cost per call: piece -> per-round microseconds.
    pieces: dict[str, list[float]] = field(default_factory=dict)
    grpc: list[Round] = field(default_factory=list)
    #: Section 2's breakdown inside a timed service: "warm"/"cold" -> one run.
    inside: dict[str, InsideRun] = field(default_factory=dict)
    http: list[Round] = field(default_factory=list)
    storm: list[StormRound] = field(default_factory=list)
    memory: MemoryFigures | None = None
    #: process -> worker count -> SecureRoute warm.
    workers: dict[str, dict[int, LoadResult]] = field(default_factory=dict)
    #: Section -> why it did not run.
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def rounds(self) -> list[Round]:
        """Each round's gRPC and HTTP runs in one dict: targets pair them (ours against Express)."""
        count = max(len(self.grpc), len(self.http))
        return [
            {**(self.grpc[i] if i < len(self.grpc) else {}), **(self.http[i] if i < len(self.http) else {})}
            for i in range(count)
        ]
