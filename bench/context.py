"""Everything a benchmark section needs, in one object: options, tools, issuer, token mint, servers.

Usage:
    ctx = BenchContext(options=..., tools=..., workdir=..., issuer=..., mint=..., stack=...)
    path = ctx.token_file("grpc-cold-1", ctx.mint.distinct("RS256", 10_000))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.issuer import IssuerThread
from bench.options import BenchOptions
from bench.stack import Server, Stack
from bench.tokens import TokenMint, write_token_file
from bench.tools import Tools

__all__ = ["LOAD_ALGORITHM", "BenchContext"]

#: The algorithm of the tokens under load: RS256, what most identity providers (and the
#: original Express system's jwks-rsa setup) sign with.
LOAD_ALGORITHM = "RS256"


@dataclass(slots=True)
class BenchContext:
    options: BenchOptions
    tools: Tools
    workdir: Path
    issuer: IssuerThread
    mint: TokenMint
    stack: Stack
    service: Server | None = None
    facade: Server | None = None
    #: The service's Unix socket (when the HTTP section runs) and a second facade reaching it there.
    service_socket: Path | None = None
    facade_unix: Server | None = None
    express: Server | None = None
    #: The one token every warm run reuses ("the same token" for every system).
    warm_token: str = ""
    notes: list[str] = field(default_factory=list)

    def token_file(self, name: str, tokens: list[str]) -> Path:
        return write_token_file(self.token_path(name), tokens)

    def token_path(self, name: str) -> Path:
        """Where ``token_file(name, ...)`` writes."""
        return self.workdir / f"{name}.tokens"

    def pool_size(self, rps_estimate: float) -> int:
        """Tokens enough for one run at ``rps_estimate``, with room for a quieter machine: a pool
        that runs out cuts the run short (and is flagged), it never sends a token twice."""
        seconds = self.options.warmup_s + self.options.load_duration_s
        return int(rps_estimate * seconds * 2.0) + 1000
