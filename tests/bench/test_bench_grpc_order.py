"""The gRPC rounds take turns (no scenario of a ratio is always the one measured first), and the
half-load pair, measured together, says so in the report."""

from __future__ import annotations

import dataclasses

from bench.grpc_load import HALF_LOAD_SCENARIOS, _in_turn
from bench.measure import LoadResult
from bench.options import BenchOptions
from bench.report import render
from bench.results import BenchResults
from bench.tools import machine_facts


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


def test_the_half_load_rows_carry_their_note_into_the_table() -> None:
    note = "run together, a quarter of the load each"
    rounds = [
        {name: dataclasses.replace(_result(1000.0), note=note) for name in HALF_LOAD_SCENARIOS},
        {name: _result(1000.0) for name in HALF_LOAD_SCENARIOS},
    ]
    results = BenchResults(facts=machine_facts(), options=BenchOptions.quick(), grpc=rounds)
    section = render(results).split("## 2.", 1)[1].split("## 3 and 4.", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| h2load")]
    assert [row.split(" | ")[0] for row in rows] == [f"| {name}" for name in HALF_LOAD_SCENARIOS]
    assert all(row.endswith(f"| {note} |") for row in rows)
