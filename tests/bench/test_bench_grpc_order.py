"""The gRPC rounds take turns: no scenario of a ratio is always the one measured first."""

from __future__ import annotations

from bench.grpc_load import _in_turn
from bench.measure import LoadResult


def _result(rps: float) -> LoadResult:
    return LoadResult(requests=1, rps=rps, p50_us=1.0, p99_us=2.0, errors=0)


def test_even_rounds_run_in_order_and_odd_rounds_in_reverse() -> None:
    ran: list[str] = []

    def run(name: str, rps: float) -> LoadResult:
        ran.append(name)
        return _result(rps)

    runs = {"a": lambda: run("a", 1.0), "b": lambda: run("b", 2.0), "c": lambda: run("c", 3.0)}
    assert {name: r.rps for name, r in _in_turn(0, runs).items()} == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert ran == ["a", "b", "c"]
    ran.clear()
    assert {name: r.rps for name, r in _in_turn(1, runs).items()} == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert ran == ["c", "b", "a"]
