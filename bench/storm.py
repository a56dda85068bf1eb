"""JWKS storm: 1,000 concurrent calls with random unknown kids, while valid calls keep flowing.

An unknown kid makes jwt_authn refresh the key set on demand. The storm checks that 1,000 of them
at once cost the issuer at most one refresh (single flight, then a cooldown and a negative cache),
and what they do to the latency of valid calls running at the same time.

Each round runs the same light stream of valid calls (h2load, one reused token) alone, then three
more times, each with one burst of the same size fired into its middle by ``bench.grpc_client``:

- *storm*: distinct tokens, each naming a random unknown kid;
- *rejection control*: distinct tokens of the same shape, signed by the known key, from an issuer
  the service does not trust: rejected by the same path as the storm's (parse, then
  UNAUTHENTICATED) but with no key-set work, so the two differ by the kid handling alone;
- *valid control*: one valid token of the known key, repeated (a token-cache hit per call). Not
  distinct valid tokens: each would add a signature check and make the control heavier than the
  storm, hiding a slow kid path.

A burst's percentiles are over the valid calls that started while it was in flight (h2load's log
has epoch timestamps). The bursts' order rotates each round (``in_turn``), after one unmeasured
warm-up burst, so no measured burst is the service's first.

Usage:
    valid_control = prepare(ctx)
    rounds = [run_round(ctx, i, valid_control) for i in range(3)]
"""

from __future__ import annotations

import functools
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench import h2load
from bench.context import BenchContext
from bench.grpc_client import fire
from bench.measure import in_turn, percentile

__all__ = ["BURSTS", "BurstRun", "StormRound", "prepare", "run_round"]

#: The valid stream: light, so its latency shows the burst rather than its own queueing.
_VALID_CONNECTIONS = _VALID_STREAMS = 2
#: The burst client needs about a second to start (Python + grpc imports, connecting).
_BURST_LEAD_S = 2.0
#: The bursts' algorithm: the signature is never checked in the storm or the rejection control,
#: so it only sets the tokens' size; the valid control's token uses it too.
_ALGORITHM = "ES256"
#: An ``iss`` the service does not trust (RFC 2606 reserves .invalid): rejected before any key lookup.
_FOREIGN_ISSUER = "https://issuer.invalid/"
BURSTS = ("rejection control", "storm", "valid control")


@dataclass(frozen=True, slots=True)
class BurstRun:
    """The valid stream while one burst was fired into it, and what the burst's calls got."""

    valid_p50_us: float
    valid_p99_us: float
    valid_in_window: int
    #: Valid calls of the whole stream that did not end in HTTP 200.
    valid_errors: int
    seconds: float
    codes: dict[str, int]


@dataclass(frozen=True, slots=True)
class StormRound:
    alone_p50_us: float
    alone_p99_us: float
    bursts: dict[str, BurstRun]
    order: tuple[str, ...]
    #: Issuer fetches between the start of the storm's run and half a second after its end.
    discovery_fetches: int
    jwks_fetches: int

    def p99(self, condition: str) -> float:
        """The valid stream's p99 "alone" or during the burst ``condition``."""
        return self.alone_p99_us if condition == "alone" else self.bursts[condition].valid_p99_us


def _stream_argv(ctx: BenchContext, port: int, seconds: float, log_path: Path) -> list[str]:
    return h2load.stream_argv(
        ctx, port, "SecureRoute", ctx.warm_token, log_path, connections=_VALID_CONNECTIONS,
        streams=_VALID_STREAMS, duration_s=seconds, warmup_s=0.5,
    )  # fmt: skip


def _burst_into_stream(ctx: BenchContext, port: int, seconds: float, tokens: Path, name: str) -> BurstRun:
    """The valid stream for ``seconds`` (after the client's lead), with ``tokens`` fired at a third."""
    log_path = ctx.workdir / f"storm-{name}.log"
    fire_at = time.time() + _BURST_LEAD_S + 0.5 + seconds / 3
    time.sleep(_BURST_LEAD_S)
    argv = _stream_argv(ctx, port, seconds, log_path)
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as valid:  # noqa: S603
        report = fire(port, tokens, start_at=fire_at)
        valid.wait(timeout=seconds * 3 + 60)
    began, ended = float(report["started_at"]), float(report["ended_at"])
    entries = h2load.log_entries(log_path)
    in_window = [latency for start, _, latency in entries if began <= start <= ended]
    return BurstRun(
        valid_p50_us=percentile(in_window, 50),
        valid_p99_us=percentile(in_window, 99),
        valid_in_window=len(in_window),
        valid_errors=sum(1 for _, status, _ in entries if status != 200),
        seconds=ended - began,
        codes={str(k): int(v) for k, v in report["codes"].items()},
    )


def prepare(ctx: BenchContext) -> Path:
    """Fire one unmeasured warm-up burst (half valid, half foreign-issuer calls: no unknown kid, so
    a key-set refresh still falls to a measured storm); returns the valid control's token file,
    whose token the warm-up put in the token cache."""
    count, port = ctx.options.storm_requests, ctx.servers["service"].port
    valid = ctx.mint.one(_ALGORITHM)
    foreign = ctx.mint.distinct(_ALGORITHM, count - count // 2, issuer=_FOREIGN_ISSUER)
    fire(port, ctx.token_file("storm-warmup", [valid if i % 2 else foreign[i // 2] for i in range(count)]))
    return ctx.token_file("storm-valid-control", [valid] * count)


def run_round(ctx: BenchContext, round_index: int, valid_control: Path) -> StormRound:
    """The valid stream alone, then with each burst of ``BURSTS`` in this round's turn."""
    port, count = ctx.servers["service"].port, ctx.options.storm_requests
    seconds = max(3.0, ctx.options.load_duration_s)
    tokens = {
        "rejection control": ctx.token_file(
            f"storm-rejection-{round_index}", ctx.mint.distinct(_ALGORITHM, count, issuer=_FOREIGN_ISSUER)
        ),
        "storm": ctx.token_file(
            f"storm-{round_index}", ctx.mint.distinct(_ALGORITHM, count, unknown_kids=True)
        ),
        "valid control": valid_control,
    }
    alone_log = ctx.workdir / f"storm-alone-{round_index}.log"
    subprocess.run(_stream_argv(ctx, port, seconds, alone_log), capture_output=True, check=True)  # noqa: S603
    alone = [latency for _, _, latency in h2load.log_entries(alone_log)]
    order: list[str] = []
    fetches = [0, 0]

    def burst(name: str) -> BurstRun:
        order.append(name)
        before = ctx.stack.fetches()
        run = _burst_into_stream(ctx, port, seconds, tokens[name], f"{name.replace(' ', '-')}-{round_index}")
        if name == "storm":
            time.sleep(0.5)  # let a refresh the storm started finish before the counters are read
            fetches[:] = [after - first for after, first in zip(ctx.stack.fetches(), before, strict=True)]
        return run

    bursts = in_turn(round_index, {name: functools.partial(burst, name) for name in BURSTS})
    return StormRound(
        percentile(alone, 50), percentile(alone, 99), bursts, tuple(order), fetches[0], fetches[1]
    )
