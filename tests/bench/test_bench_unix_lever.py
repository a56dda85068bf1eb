"""The Unix-socket lever of the HTTP section: run order, the shared cold pool, the report's rows.

Pure functions on hand-built results, as in test_bench_pieces.py: no timing is asserted.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench.http_load import SCENARIOS, UNIX_FACADE, UNIX_SCENARIOS, cold_runs_may_overlap, round_order
from bench.measure import LoadResult
from bench.options import BenchOptions
from bench.report import render, targets
from bench.results import BenchResults
from bench.stack import Stack
from bench.tools import machine_facts

OPTIONS = dataclasses.replace(BenchOptions.quick(), rounds=3)
LEVER = "lever: facade over a Unix socket / over TCP, /secure-route warm, req/s"
FACADE_VS_EXPRESS_WARM = "facade /secure-route warm / Express /secure-route warm, req/s"


def _run(rps: float, cpu_us: float, **changes: object) -> LoadResult:
    result = LoadResult(
        requests=int(rps * 5), rps=rps, p50_us=1000, p99_us=5000, errors=0, server_cpu_us=cpu_us
    )
    return dataclasses.replace(result, **changes)  # type: ignore[arg-type]


#: Three hand-built HTTP rounds, (TCP, Unix) per scenario as (req/s, CPU µs/req):
#: warm req/s 900 → 990 (1.10x), 1000 → 1200 (1.20x), 1100 → 1155 (1.05x): median of the per-round
#: ratios 1.10x, where the ratio of the medians (1155 / 1000) would be 1.155x.
#: warm CPU 900 → 750 (1.20x as requests per CPU-second), 800 → 800 (1.00x), 1000 → 800 (1.25x): 1.20x.
#: /health: 1.05x by req/s, 1.25x by CPU every round; cold: 0.95x and 1.00x every round.
#: Express warm is 500 req/s: facade (TCP) / Express warm 1.8, 2.0, 2.2, median 2.0.
_WARM = ((900, 900, 990, 750), (1000, 800, 1200, 800), (1100, 1000, 1155, 800))


def _round(index: int) -> dict[str, LoadResult]:
    tcp_rps, tcp_cpu, unix_rps, unix_cpu = _WARM[index]
    return {
        "facade /health": _run(2000, 1000),
        "facade /secure-route warm": _run(tcp_rps, tcp_cpu),
        "facade /secure-route cold": _run(1000, 1500),
        f"{UNIX_FACADE} /health": _run(2100, 800),
        f"{UNIX_FACADE} /secure-route warm": _run(unix_rps, unix_cpu),
        f"{UNIX_FACADE} /secure-route cold": _run(950, 1500),
        "express /health": _run(8000, 100),
        "express /secure-route warm": _run(500, 300),
        "express /secure-route cold": _run(500, 300),
    }


def _results(rounds: list[dict[str, LoadResult]], *, with_grpc: bool = False) -> BenchResults:
    """``with_grpc``: empty gRPC rounds, so the targets that pair gRPC and HTTP rounds are computed."""
    grpc: list[dict[str, LoadResult]] = [{} for _ in rounds] if with_grpc else []
    return BenchResults(facts=machine_facts(), options=OPTIONS, http=rounds, grpc=grpc)


def _http_section(text: str) -> str:
    return text.split("## 3 and 4.", 1)[1].split("## 5.", 1)[0]


def test_the_two_facades_swap_places_every_other_round_and_express_keeps_its_place() -> None:
    systems = ("facade", UNIX_FACADE, "express")
    assert round_order(systems, 0) == systems
    assert round_order(systems, 1) == (UNIX_FACADE, "facade", "express")
    assert round_order(systems, 2) == systems
    # Without the Unix-socket facade nothing moves.
    assert round_order(("facade", "express"), 1) == ("facade", "express")


def test_cold_runs_from_opposite_ends_of_a_pool_overlap_only_when_they_may_meet() -> None:
    # 4,000 + 5 failed + 32 in flight, twice: 8,074 tokens at most.
    runs = [_run(800, 1000, requests=4000, errors=5)] * 2
    assert not cold_runs_may_overlap(runs, pool_size=8074, connections=32)
    assert cold_runs_may_overlap(runs, pool_size=8073, connections=32)


def test_the_lever_scenarios_mirror_the_facade_ones_and_stay_out_of_the_main_table() -> None:
    facade = [name.removeprefix("facade ") for name in SCENARIOS if name.startswith("facade ")]
    assert [name.removeprefix(f"{UNIX_FACADE} ") for name in UNIX_SCENARIOS] == facade
    assert not set(UNIX_SCENARIOS) & set(SCENARIOS)


def test_lever_target_is_informative_and_the_median_of_per_round_ratios() -> None:
    rows = {t.name: t for t in targets(_results([_round(i) for i in range(3)], with_grpc=True))}
    lever = rows[LEVER]
    assert lever.value == pytest.approx(1.10)
    assert (lever.passed, lever.informative, lever.shown) == (None, True, "1.10x")
    # The facade rows still read the TCP facade.
    assert rows[FACADE_VS_EXPRESS_WARM].value == pytest.approx(2.0)
    assert rows[FACADE_VS_EXPRESS_WARM].passed is True


def test_no_lever_row_without_unix_socket_runs() -> None:
    tcp_only = [{k: v for k, v in _round(i).items() if not k.startswith(UNIX_FACADE)} for i in range(3)]
    results = _results(tcp_only)
    assert LEVER not in {t.name for t in targets(results)}
    assert "Lever: a Unix socket" not in render(results)


def test_http_section_shows_tcp_and_unix_side_by_side_with_their_ratios() -> None:
    text = render(_results([_round(i) for i in range(3)]))
    assert (
        f"| {LEVER} | 1.10x | > 1 if the lever pays (informative: sections 3 and 4) | informative |"
    ) in text
    section = _http_section(text)
    assert "**Lever: a Unix socket between facade and service.**" in section
    # scenario | req/s TCP | Unix | ratio | CPU TCP | Unix | ratio by CPU | failed | note
    assert "| /health | 2,000 | 2,100 | 1.05x | 1,000 | 800 | 1.25x | 0 |  |" in section
    assert "| /secure-route warm | 1,000 | 1,155 | 1.10x | 900 | 800 | 1.20x | 0 |  |" in section
    assert "| /secure-route cold | 1,000 | 950 | 0.95x | 1,500 | 1,500 | 1.00x | 0 |  |" in section
    # The main table keeps its six rows; the Unix-socket runs appear in it under no name.
    main_table = section.split("**Lever", 1)[0]
    assert f"| {UNIX_FACADE} " not in main_table
    assert "| facade / Express, /secure-route warm | 2.00x |" in main_table


def test_lever_table_carries_failures_and_notes_of_the_unix_runs() -> None:
    rounds = [_round(i) for i in range(3)]
    cold = f"{UNIX_FACADE} /secure-route cold"
    rounds[1][cold] = dataclasses.replace(rounds[1][cold], errors=2, note="may have reused tokens")
    rounds[2][cold] = dataclasses.replace(rounds[2][cold], tokens_exhausted=True)
    section = _http_section(render(_results(rounds)))
    row = next(line for line in section.splitlines() if line.startswith("| /secure-route cold |"))
    assert row.endswith("| 2 | may have reused tokens; token pool ran out: req/s is a lower bound |")


def test_socket_path_stays_in_a_short_workdir(tmp_path: Path) -> None:
    with Stack(tmp_path) as stack:
        assert stack.unix_socket_path("grpc.sock") == tmp_path / "grpc.sock"


def test_socket_path_moves_to_a_short_directory_when_the_workdir_is_too_deep(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    with Stack(deep) as stack:
        path = stack.unix_socket_path("grpc.sock")
        assert path.name == "grpc.sock" and path.parent.is_dir()
        assert str(path.parent).startswith("/tmp/srb-")  # noqa: S108 - the fallback's own place
        assert len(str(path).encode()) <= 107
    assert not path.parent.exists()  # removed with the stack
