"""Section 2's breakdown: the timed service times each piece per protected call, and the report shows it.

The timed service runs as a real process against a real loopback issuer and is called over gRPC;
no timing is asserted (the machine is shared), only what was counted and that every piece ran.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc

from bench.inside import InsideRun, read_timings
from bench.issuer import IssuerThread
from bench.measure import LoadResult
from bench.options import BenchOptions
from bench.report import render
from bench.results import BenchResults
from bench.stack import AUDIENCE, Stack
from bench.timed_service import PIECES
from bench.tokens import TokenMint
from bench.tools import machine_facts

_SERVICE = "/secureroute.v1.SecureRouteService/"
_ALGORITHM = "ES256"


def test_the_timed_service_counts_protected_calls_and_times_every_piece(tmp_path: Path) -> None:
    timings = tmp_path / "timings.json"
    with (
        IssuerThread(algorithms=(_ALGORITHM,), audience=AUDIENCE) as issuer,
        TokenMint(issuer.url, AUDIENCE, issuer.keys, workers=1) as mint,
        Stack(tmp_path) as stack,
    ):
        server = stack.start_service(
            issuer.url, launcher=("bench.timed_service", "--timings-file", str(timings)), name="timed"
        )
        # Start-up asked Health (public) only: no protected call yet.
        assert read_timings(server, timings, serial=1)["calls"] == 0
        reused, fresh = mint.one(_ALGORITHM), mint.distinct(_ALGORITHM, 3)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            for method, tokens in (("SecureRoute", [reused, reused, *fresh]), ("Health", [reused])):
                call = channel.unary_unary(
                    _SERVICE + method, request_serializer=None, response_deserializer=None
                )
                for token in tokens:
                    call(b"", metadata=(("authorization", f"Bearer {token}"),), timeout=10)
        report = read_timings(server, timings, serial=2)
        assert report["calls"] == 5  # the five SecureRoute calls; Health is public
        assert {label: report["ns"].get(label, 0) > 0 for label, _, _ in PIECES} == {
            label: True for label, _, _ in PIECES
        }
        # Each signal starts counting afresh.
        assert read_timings(server, timings, serial=3) == {"serial": 3, "calls": 0, "ns": {}}


def test_the_report_shows_each_piece_for_the_warm_and_the_cold_run() -> None:
    load = LoadResult(requests=1000, rps=200, p50_us=1000, p99_us=2000, errors=0, server_cpu_us=300)
    runs = {
        name: InsideRun(
            load=load, calls=1000 + index, us_per_call={label: 10.0 * (index + 1) for label, _, _ in PIECES}
        )
        for index, name in enumerate(("warm", "cold"))
    }
    options = dataclasses.replace(BenchOptions.quick(), sections=("grpc",))
    text = render(BenchResults(facts=machine_facts(), options=options, grpc=[{}], inside=runs))
    assert "| piece | warm µs per call | cold µs per call |" in text
    for label, _, _ in PIECES:
        assert f"| {label} | 10.0 | 20.0 |" in text
    assert "| calls timed | 1,000 | 1,001 |" in text
    # "Where the time goes" quotes the in-server figures instead of a guess.
    assert "authentication took 10.0 µs on a cached token and 20.0 µs on a new one" in text
    assert "the signature check 20.0 µs of that" in text
