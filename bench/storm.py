"""JWKS storm: 1,000 concurrent calls with random unknown kids, while valid calls keep flowing.

An unknown kid makes jwt_authn refresh the key set on demand. The storm checks that 1,000 of
them at once cost the issuer at most one refresh (single flight, then a cooldown and a
negative cache), and what they do to the latency of valid calls running at the same time.

Each round runs the same light stream of valid calls (h2load, one reused token) alone
(baseline), then three more times, each with one burst of the same size fired into its middle
by ``bench.grpc_client`` (same client, same channels, same concurrency):

- *storm*: distinct tokens, each naming a random unknown kid;
- *rejection control*: distinct tokens of the same shape, signed by the known key, from an
  issuer the service does not trust: rejected by the same path as the storm's (parse, then
  UNAUTHENTICATED) but before any key lookup;
- *valid control*: one valid token of the known key, repeated (a token-cache hit per call).

A burst's percentiles are taken over the valid calls that started while it was in flight
(h2load's per-request log has epoch timestamps); the issuer's counters are read directly.
1,000 calls arriving at once queue on the service's one event loop whatever they carry, so
the storm's p99 is read against the controls': storm / control near 1 means the unknown kids
add nothing beyond the load of a same-size burst.

Usage:
    valid_control = prepare_storm(ctx)
    rounds = [run_storm_round(ctx, i, valid_control) for i in range(3)]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.stack import REPO_ROOT
from bench.stats import percentile

__all__ = [
    "BURSTS",
    "FOREIGN_ISSUER",
    "BurstRun",
    "StormRound",
    "burst_order",
    "prepare_storm",
    "run_storm_round",
]

_SERVICE = "/secureroute.v1.SecureRouteService/"
#: The valid stream: light, so its latency shows the burst rather than its own queueing.
_VALID_CONNECTIONS = 2
_VALID_STREAMS = 2
#: The burst client needs about a second to start (Python + grpc imports, connecting).
_BURST_LEAD_S = 2.0
#: The storm's and the rejection control's algorithm: the signature is never checked in either,
#: so it only sets the tokens' size, and the valid control's token uses it too.
_BURST_ALGORITHM = "ES256"
#: An ``iss`` the service does not trust (RFC 2606 reserves .invalid): rejected before any key lookup.
FOREIGN_ISSUER = "https://issuer.invalid/"
#: The bursts of a round. Each round rotates this order by one, so over three rounds each burst
#: runs once first, once second and once last; together with the unmeasured warm-up burst of
#: ``prepare_storm`` (so no measured burst is the service's first), no burst gains from warm-up
#: (heap grown for 1,000 concurrent calls, files in the page cache) that the others lack.
BURSTS: tuple[str, ...] = ("rejection control", "storm", "valid control")


@dataclass(frozen=True, slots=True)
class BurstRun:
    """The valid stream while one burst was fired into it, and what the burst's calls got."""

    #: Over the valid calls that started while the burst was in flight.
    valid_p50_us: float
    valid_p99_us: float
    valid_in_window: int
    #: Valid calls of the whole stream that did not end in HTTP 200.
    valid_errors: int
    requests: int
    seconds: float
    codes: dict[str, int]


@dataclass(frozen=True, slots=True)
class StormRound:
    baseline_p50_us: float
    baseline_p99_us: float
    storm: BurstRun
    rejection_control: BurstRun
    valid_control: BurstRun
    #: The bursts in the order they ran (names from ``BURSTS``).
    order: tuple[str, ...]
    #: Issuer fetches between the start of the storm's run and half a second after its end.
    discovery_fetches: int
    jwks_fetches: int

    def burst(self, name: str) -> BurstRun:
        """The run of the burst ``name`` (one of ``BURSTS``)."""
        if name == "storm":
            return self.storm
        if name == "rejection control":
            return self.rejection_control
        if name == "valid control":
            return self.valid_control
        raise KeyError(f"no burst named {name!r}; the bursts are {', '.join(BURSTS)}")


def _h2load_argv(ctx: BenchContext, port: int, seconds: float, log_path: Path) -> list[str]:
    assert ctx.tools.h2load is not None
    return [
        ctx.tools.h2load,
        "-t1",
        f"-c{_VALID_CONNECTIONS}",
        f"-m{_VALID_STREAMS}",
        f"-D{round(seconds * 1000)}ms",
        "--warm-up-time=500ms",
        "-d",
        str(ctx.workdir / "grpc-empty-frame.bin"),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        "-H",
        f"authorization: Bearer {ctx.warm_token}",
        f"--log-file={log_path}",
        f"http://127.0.0.1:{port}{_SERVICE}SecureRoute",
    ]


def _log_entries(log_path: Path) -> list[tuple[float, int, float]]:
    """(start epoch seconds, HTTP status, latency microseconds) of every logged request."""
    entries = []
    with open(log_path, encoding="ascii") as log:
        for line in log:
            fields = line.split("\t")
            if len(fields) >= 3:
                entries.append((int(fields[0]) / 1e6, int(fields[1]), float(fields[2])))
    return entries


def _fire(port: int, tokens: Path, *, start_at: float | None) -> dict[str, Any]:
    """One burst by ``bench.grpc_client``: every token of ``tokens`` at once; its JSON report."""
    argv = [
        sys.executable,
        "-m",
        "bench.grpc_client",
        "--target",
        f"127.0.0.1:{port}",
        "--method",
        "SecureRoute",
        "--tokens",
        str(tokens),
    ]
    if start_at is not None:
        argv += ["--start-at", f"{start_at:.6f}"]
    burst = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=True
    )
    report: dict[str, Any] = json.loads(burst.stdout.strip().splitlines()[-1])
    return report


def _burst_into_stream(ctx: BenchContext, port: int, seconds: float, tokens: Path, name: str) -> BurstRun:
    """The valid stream for ``seconds`` (after the client's lead), with ``tokens`` fired at a third."""
    log_path = ctx.workdir / f"storm-{name}.log"
    fire_at = time.time() + _BURST_LEAD_S + 0.5 + seconds / 3
    valid = subprocess.Popen(  # noqa: S603
        _h2load_argv(ctx, port, seconds + _BURST_LEAD_S, log_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    report = _fire(port, tokens, start_at=fire_at)
    valid.wait(timeout=seconds * 3 + 60)
    began, ended = float(report["started_at"]), float(report["ended_at"])
    entries = _log_entries(log_path)
    in_window = [latency for start, _, latency in entries if began <= start <= ended]
    return BurstRun(
        valid_p50_us=percentile(in_window, 50),
        valid_p99_us=percentile(in_window, 99),
        valid_in_window=len(in_window),
        valid_errors=sum(1 for _, status, _ in entries if status != 200),
        requests=int(report["requests"]),
        seconds=ended - began,
        codes={str(k): int(v) for k, v in report["codes"].items()},
    )


def burst_order(round_index: int) -> tuple[str, ...]:
    """The bursts of round ``round_index``: ``BURSTS`` rotated by one more each round."""
    shift = round_index % len(BURSTS)
    return BURSTS[shift:] + BURSTS[:shift]


def prepare_storm(ctx: BenchContext) -> Path:
    """Mint the valid control's token and fire one unmeasured warm-up burst; returns the valid
    control's token file.

    The warm-up carries half valid-control and half rejection-control calls, so both answer
    paths have run once under a burst before anything is measured. It carries no unknown kid:
    an on-demand refresh (single flight) is part of what a measured storm shows.
    Verifying the valid token here also puts it in the token cache, so every valid-control
    call is a cache hit.
    """
    assert ctx.service is not None
    count = ctx.options.storm_requests
    valid = ctx.mint.one(_BURST_ALGORITHM)
    foreign = ctx.mint.distinct(_BURST_ALGORITHM, count - count // 2, issuer=FOREIGN_ISSUER)
    mixed = [valid if index % 2 else foreign[index // 2] for index in range(count)]
    _fire(ctx.service.port, ctx.token_file("storm-warmup", mixed), start_at=None)
    return ctx.token_file("storm-valid-control", [valid] * count)


def run_storm_round(ctx: BenchContext, round_index: int, valid_control: Path) -> StormRound:
    """The baseline, then the three bursts of ``BURSTS`` in this round's rotation."""
    assert ctx.service is not None and ctx.tools.h2load is not None
    port = ctx.service.port
    seconds = max(3.0, ctx.options.load_duration_s)
    count = ctx.options.storm_requests
    tokens = {
        "storm": ctx.token_file(
            f"storm-{round_index}", ctx.mint.distinct(_BURST_ALGORITHM, count, unknown_kids=True)
        ),
        # Why this control, and not distinct valid tokens: an unknown-kid call costs a parse, the
        # kid handling (a key lookup, the negative cache, the refresh cooldown or single flight)
        # and a rejection; a foreign-issuer call costs the same parse and the same rejection, and
        # no key-set work at all, so the difference between the two is the kid handling alone.
        # Distinct valid tokens would each add a signature check (tens of µs: tens of ms per
        # burst, a good part of its length) and make the control heavier than the storm, hiding
        # a slow kid path; the reused valid token (the valid control) is the everyday burst.
        "rejection control": ctx.token_file(
            f"storm-rejection-control-{round_index}",
            ctx.mint.distinct(_BURST_ALGORITHM, count, issuer=FOREIGN_ISSUER),
        ),
        "valid control": valid_control,
    }

    baseline_log = ctx.workdir / f"storm-baseline-{round_index}.log"
    subprocess.run(_h2load_argv(ctx, port, seconds, baseline_log), capture_output=True, check=True)  # noqa: S603
    baseline = [latency for _, _, latency in _log_entries(baseline_log)]

    order = burst_order(round_index)
    runs: dict[str, BurstRun] = {}
    fetches = (0, 0)
    for name in order:
        before = ctx.issuer.fetches()
        runs[name] = _burst_into_stream(
            ctx, port, seconds, tokens[name], f"{name.replace(' ', '-')}-{round_index}"
        )
        if name == "storm":
            # Let a refresh started by the storm finish before the counters are read.
            time.sleep(0.5)
            after = ctx.issuer.fetches()
            fetches = (after[0] - before[0], after[1] - before[1])
    return StormRound(
        baseline_p50_us=percentile(baseline, 50),
        baseline_p99_us=percentile(baseline, 99),
        storm=runs["storm"],
        rejection_control=runs["rejection control"],
        valid_control=runs["valid control"],
        order=order,
        discovery_fetches=fetches[0],
        jwks_fetches=fetches[1],
    )
