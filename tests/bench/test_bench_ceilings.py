"""The report's ceilings: how far each target against Express could go with no authentication at all,
and what the signature check alone leaves of the cold gRPC goal.

Pure functions on hand-built results, as in test_bench_unix_lever.py: no timing is asserted.
"""

from __future__ import annotations

import dataclasses

import pytest

from bench.inside import InsideRun
from bench.measure import LoadResult
from bench.options import BenchOptions
from bench.report import CEILING_ROUTES, EXPRESS_TARGETS, Target, render, targets
from bench.results import BenchResults
from bench.timed_service import PIECES, SIGNATURE
from bench.tools import machine_facts

OPTIONS = dataclasses.replace(BenchOptions.quick(), rounds=3)


def _run(rps: float, cpu_us: float = 500) -> LoadResult:
    return LoadResult(
        requests=int(rps * 5), rps=rps, p50_us=1000, p99_us=5000, errors=0, server_cpu_us=cpu_us
    )


#: Per round: (facade /health, h2load Health, Express warm) req/s; Express cold is 2,000 in every round.
#: facade /health / Express warm: 0.8, 0.8, 1.5 → median 0.8 (the ratio of the medians would be 1.2);
#: over Express cold: 0.4, 0.8, 0.6 → 0.6; h2load Health / Express warm: 1.9, 1.25, 2.625 → 1.9 (2.1).
_ROUNDS = ((800, 1900, 1000), (1600, 2500, 2000), (1200, 2100, 800))


def _results(*, inside: dict[str, InsideRun] | None = None) -> BenchResults:
    grpc, http = [], []
    for facade_health, grpc_health, express_warm in _ROUNDS:
        grpc.append(
            {
                "h2load Health": _run(grpc_health),
                "h2load SecureRoute warm": _run(grpc_health * 0.9),
                "h2grpc Health": _run(1500, cpu_us=300),
            }
        )
        http.append(
            {
                "facade /health": _run(facade_health),
                "facade /secure-route warm": _run(facade_health * 0.9),
                "facade /secure-route cold": _run(facade_health / 2),
                "express /secure-route warm": _run(express_warm),
                "express /secure-route cold": _run(2000),
            }
        )
    return BenchResults(facts=machine_facts(), options=OPTIONS, grpc=grpc, http=http, inside=inside or {})


def _row(rows: list[Target], name: str) -> tuple[int, Target]:
    return next((index, row) for index, row in enumerate(rows) if row.name == name)


@pytest.mark.parametrize(
    ("target_index", "expected"),
    [(0, 0.8), (1, 0.6), (2, 1.9)],
    ids=["facade-warm", "facade-cold", "grpc-warm"],
)
def test_each_express_target_is_followed_by_its_ceiling_the_unauthenticated_route(
    target_index: int, expected: float
) -> None:
    rows = targets(_results())
    name, _, express, goal = EXPRESS_TARGETS[target_index]
    index, _ = _row(rows, name)
    ceiling = rows[index + 1]
    assert ceiling.name.startswith(f"ceiling of the row above: {CEILING_ROUTES[target_index]} ")
    assert express in ceiling.name
    assert ceiling.informative and ceiling.passed is None
    assert ceiling.value == pytest.approx(expected)
    assert f"≥ {goal}x" in ceiling.goal


def test_the_reading_quotes_the_ceilings_against_express() -> None:
    text = render(_results())
    reading = text.split("## Where the time goes", 1)[1]
    assert "The facade's /health, which authenticates nothing, served 0.80x" in reading
    assert "our gRPC Health 1.90x" in reading


def test_the_signature_bound_comes_from_the_in_server_breakdown() -> None:
    load, every_piece = _run(1000), {label: 1.0 for label, _, _ in PIECES}
    cold = InsideRun(load=load, calls=5000, us_per_call={**every_piece, SIGNATURE: 100.0})
    warm = InsideRun(load=load, calls=5000, us_per_call=every_piece)
    text = render(_results(inside={"warm": warm, "cold": cold}))
    # h2grpc Health costs 300 µs of CPU: 300 / (300 + 100) = 0.75.
    assert "Were the signature check (100.0 µs in the server) the only extra work" in text
    assert "cold / Health by CPU would be 0.75x (h2grpc Health, 300 µs)" in text
    # Without the breakdown there is no figure to quote.
    assert "Were the signature check" not in render(_results())
