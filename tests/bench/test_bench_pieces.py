"""The benchmark harness's pieces work: each runs once with tiny counts and yields figures.

No timing is asserted anywhere: this machine is shared, and the figures belong in
docs/benchmarks.md, not in a pass/fail. What is checked is shape: every metric measured,
ratios computed, generators' output parsed, the report rendered.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import math
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from bench.grpc_load import _parse_h2grpc
from bench.http_load import _parse_wrk
from bench.measure import LoadResult
from bench.memory import MemoryFigures
from bench.options import BenchOptions
from bench.pieces import PIECES, run_pieces
from bench.report import render, targets
from bench.results import BenchResults
from bench.stats import median_of, percentile, ratio_of
from bench.storm import BURSTS, BurstRun, StormRound, burst_order
from bench.tokens import TokenMint
from bench.tools import machine_facts
from bench.validation import ALGORITHMS, METRICS, run_validation
from jwt_authn.testing import generate_key

TINY = dataclasses.replace(BenchOptions.quick(), rounds=1, validation_tokens=3, warm_iterations=5)
H2GRPC = Path(__file__).resolve().parents[2] / "bench" / "loadgen" / "h2grpc.js"


def test_validation_runs_one_tiny_round_and_gives_every_ratio() -> None:
    figures = run_validation(TINY)
    assert set(figures) == set(ALGORITHMS)
    for row in figures.values():
        assert set(row) == set(METRICS)
        assert all(len(values) == 1 and values[0] > 0 for values in row.values())
    results = BenchResults(facts=machine_facts(), options=TINY, validation=figures)
    measured = {t.name: t for t in targets(results)}
    for alg in ("RS256", "ES256"):
        ratio = measured[f"{alg} cold validation / raw cryptography verify"].value
        assert ratio is not None and ratio > 0
    assert measured["warm validation (cache hit), median over the algorithms"].passed is not None


def test_in_process_pieces_each_give_a_figure() -> None:
    figures = run_pieces(TINY)
    assert set(figures) == set(PIECES)
    assert all(len(values) == 1 and values[0] > 0 for values in figures.values())


def test_stats() -> None:
    assert percentile([5, 1, 4, 2, 3], 50) == 3
    assert percentile([5, 1, 4, 2, 3], 99) == 5
    assert math.isnan(percentile([], 50))
    assert median_of([None, 1.0, math.nan, 3.0]) == 2.0
    assert median_of([None]) is None
    assert ratio_of(1.0, 0.0) is None
    assert ratio_of(3.0, 2.0) == 1.5


def test_options_refuse_an_unknown_section() -> None:
    with pytest.raises(ValueError, match="only"):
        dataclasses.replace(TINY, sections=("validation", "nope"))


def test_generator_outputs_parse() -> None:
    wrk = _parse_wrk(
        'Running 5s test\nBENCH_JSON {"requests":1000,"duration_us":2000000,"status_errors":1,'
        '"socket_errors":0,"timeouts":0,"p50_us":900,"p99_us":4000,"exhausted":true}\n'
    )
    assert (wrk.requests, wrk.rps, wrk.errors, wrk.tokens_exhausted) == (1000, 500.0, 1, True)
    h2grpc = _parse_h2grpc(
        json.dumps({"requests": 10, "seconds": 2, "rps": 5, "p50_us": 1, "p99_us": 2,
                    "errors": {"16": 3}, "tokens_exhausted": False})
    )  # fmt: skip
    assert (h2grpc.requests, h2grpc.errors) == (10, 3)


def test_token_mint_signs_distinct_tokens_and_unknown_kids() -> None:
    key = generate_key("ES256", kid="bench-key")
    with TokenMint("http://127.0.0.1:1", "secureroute", {"ES256": key}, workers=1) as mint:
        tokens = mint.distinct("ES256", 3)
        storm = mint.distinct("ES256", 2, unknown_kids=True)
        foreign = mint.distinct("ES256", 2, issuer="https://issuer.invalid/")
    assert len(set(tokens)) == 3
    heads = [json.loads(_segment(t)) for t in storm]
    assert all(h["kid"].startswith("unknown-") for h in heads)
    assert [json.loads(_segment(t, 1))["iss"] for t in foreign] == ["https://issuer.invalid/"] * 2
    assert json.loads(_segment(foreign[0]))["kid"] == "bench-key"  # the known key: only iss differs
    assert json.loads(_segment(tokens[0], 1))["iss"] == "http://127.0.0.1:1"


def _segment(token: str, index: int = 0) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _burst(p50_us: float, p99_us: float, seconds: float, code: str) -> BurstRun:
    return BurstRun(p50_us, p99_us, valid_in_window=60, valid_errors=0, requests=1000, seconds=seconds,
                    codes={code: 1000})  # fmt: skip


#: Two hand-built storm rounds. Valid p99 (ms) alone → rejection control → valid control → storm:
#: round 1: 2 → 7.5 → 6 → 9 (storm / alone 4.5, / rejection control 1.2, / valid control 1.5);
#: round 2: 1 → 5 → 3.9 → 5 (5.0, 1.0, 1.282). Medians: 4.75, 1.1, 1.391.
STORM_ROUNDS = (
    StormRound(
        baseline_p50_us=1000, baseline_p99_us=2000,
        storm=_burst(1600, 9000, 0.32, "UNAUTHENTICATED"),
        rejection_control=_burst(1500, 7500, 0.30, "UNAUTHENTICATED"),
        valid_control=_burst(1400, 6000, 0.25, "OK"),
        order=burst_order(0), discovery_fetches=1, jwks_fetches=1,
    ),
    StormRound(
        baseline_p50_us=900, baseline_p99_us=1000,
        storm=_burst(1200, 5000, 0.36, "UNAUTHENTICATED"),
        rejection_control=_burst(1100, 5000, 0.40, "UNAUTHENTICATED"),
        valid_control=_burst(1000, 3900, 0.35, "OK"),
        order=burst_order(1), discovery_fetches=0, jwks_fetches=0,
    ),
)  # fmt: skip
STORM_VS_CONTROL = "valid calls' p99 during the storm / during a same-size burst of foreign-issuer tokens"


def test_report_renders_every_section_from_synthetic_results() -> None:
    def run(rps: float) -> LoadResult:
        return LoadResult(requests=100, rps=rps, p50_us=1000, p99_us=5000, errors=0, server_cpu_us=300)

    grpc_round = {
        "h2load Health": run(1000),
        "h2load SecureRoute warm": run(960),
        "h2grpc Health": run(900),
        "h2grpc SecureRoute cold": run(700),
        "h2grpc SecureRoute warm": run(880),
    }
    http_round = {
        f"{system} {what}": run(500)
        for system in ("facade", "express")
        for what in ("/health", "/secure-route warm", "/secure-route cold")
    }
    results = BenchResults(
        facts=machine_facts(),
        options=TINY,
        grpc=[grpc_round],
        http=[http_round],
        storm=list(STORM_ROUNDS),
        memory=MemoryFigures(
            10, {"service": (100, 110, 111), "facade": (50, 50, 50)}, (10, 10), (0, 0), (5, 5)
        ),
        workers_available={"service": False, "facade": False},
    )
    text = render(results)
    for heading in ("## Targets", "## 1.", "## 2.", "## 3 and 4.", "## 5.", "## 6.", "## 7."):
        assert heading in text
    verdicts = {t.name: t.passed for t in targets(results)}
    assert verdicts["gRPC SecureRoute warm / Health, req/s (h2load)"] is True
    assert verdicts["gRPC SecureRoute cold / Health, req/s (h2grpc)"] is False  # 700/900
    assert "not available (no `--workers` flag)" in text


def test_each_burst_takes_each_place_once_in_three_rounds() -> None:
    orders = [burst_order(i) for i in range(3)]
    assert all(sorted(order) == sorted(BURSTS) for order in orders)
    for place in range(len(BURSTS)):
        assert sorted(order[place] for order in orders) == sorted(BURSTS)
    assert burst_order(3) == burst_order(0)


def test_storm_targets_keep_the_issue_goal_and_add_the_control_ratio() -> None:
    results = BenchResults(facts=machine_facts(), options=TINY, storm=list(STORM_ROUNDS))
    rows = {t.name.split(" (")[0]: t for t in targets(results)}
    issue = rows["valid calls' p99 during a storm / without it"]
    assert issue.value == pytest.approx(4.75)
    assert (issue.goal, issue.passed, issue.informative) == ("≤ 1.2x", False, False)
    control = rows[STORM_VS_CONTROL]
    assert control.value == pytest.approx(1.1)
    assert (control.passed, control.informative, control.shown) == (None, True, "1.10x")
    assert control.goal.startswith("≈ 1")
    assert rows["issuer fetches per storm of 1,000 unknown kids"].passed is True


def test_storm_section_shows_every_burst_and_ratio() -> None:
    text = render(BenchResults(facts=machine_facts(), options=TINY, storm=list(STORM_ROUNDS)))
    target_row = next(line for line in text.splitlines() if line.startswith(f"| {STORM_VS_CONTROL}"))
    assert target_row.endswith(
        "| 1.10x | ≈ 1 (informative: isolates the unknown-kid handling) | informative |"
    )
    assert "| valid calls' p99 during a storm / without it | 4.75x | ≤ 1.2x | **miss** |" in text
    section = text.split("## 5. JWKS storm", 1)[1].split("## 6.", 1)[0]
    # Per round: order, fetches, p50 and p99 alone → rejection control → valid control → storm, ratios.
    assert (
        "| 1 | rejection control → storm → valid control | 1 + 1 | 1.00 → 1.50 → 1.40 → 1.60 "
        "| 2.00 → 7.50 → 6.00 → 9.00 | 4.50x | 1.20x | 1.50x |"
    ) in section
    assert (
        "| 2 | storm → valid control → rejection control | 0 + 0 | 0.90 → 1.10 → 1.00 → 1.20 "
        "| 1.00 → 5.00 → 3.90 → 5.00 | 5.00x | 1.00x | 1.28x |"
    ) in section
    assert "| 1 | valid control | OK 1000 | 250 | 60 | 0 |" in section
    assert "| 2 | rejection control | UNAUTHENTICATED 1000 | 400 | 60 | 0 |" in section
    # Medians, and each burst's own length next to the storm's.
    assert "p99 storm / alone 4.75x (the issue's target), storm / rejection control 1.10x" in section
    assert "storm / valid control 1.39x" in section
    assert "340 ms (storm), 350 ms (rejection control) and 300 ms (valid control)" in section
    assert "With 60 to 60 valid calls in a window, its p99 is its slowest call," in section


def test_storm_section_says_which_slowest_call_the_p99_is() -> None:
    busy = dataclasses.replace(
        STORM_ROUNDS[0], valid_control=dataclasses.replace(STORM_ROUNDS[0].valid_control, valid_in_window=247)
    )
    text = render(BenchResults(facts=machine_facts(), options=TINY, storm=[busy]))
    assert "With 60 to 247 valid calls in a window, its p99 is one of its 3 slowest calls," in text


def test_a_storm_round_names_its_bursts() -> None:
    first = STORM_ROUNDS[0]
    assert [first.burst(name).valid_p99_us for name in BURSTS] == [7500, 9000, 6000]
    with pytest.raises(KeyError, match="no burst named"):
        first.burst("alone")


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A grpc.aio server whose SecureRoute answers OK with an authorization header, else UNAUTHENTICATED."""

    async def secure(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        if not any(key == "authorization" for key, _ in context.invocation_metadata() or ()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no token")
        return b""

    handler = grpc.method_handlers_generic_handler(
        "secureroute.v1.SecureRouteService",
        {"SecureRoute": grpc.unary_unary_rpc_method_handler(secure)},
    )
    server = grpc.aio.server(handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(0)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_h2grpc_generator_sends_one_token_per_call_and_stops_when_they_run_out(
    echo_port: int, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("".join(f"token-{i}\n" for i in range(50)))
    argv = [
        "node", str(H2GRPC), "--url", f"http://127.0.0.1:{echo_port}",
        "--path", "/secureroute.v1.SecureRouteService/SecureRoute", "--tokens", str(tokens),
        "--duration", "5", "--warmup", "0", "--connections", "2", "--streams", "2",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(process.communicate(), 30)
    result = _parse_h2grpc(stdout.decode())
    assert result.requests == 50  # every token once, none twice
    assert result.errors == 0
    assert result.tokens_exhausted


def test_p99_added_at_half_load_is_the_median_of_rounds_shown_with_its_spread() -> None:
    def half(p99_ms: float) -> LoadResult:
        return LoadResult(requests=100, rps=500, p50_us=1000, p99_us=p99_ms * 1000, errors=0)

    rounds = [
        {"h2load Health @ half load": half(health), "h2load SecureRoute warm @ half load": half(secure)}
        for health, secure in ((8.0, 7.0), (8.0, 8.5), (6.0, 8.5))  # added: -1.0, +0.5, +2.5
    ]
    results = BenchResults(facts=machine_facts(), options=TINY, grpc=rounds)
    (row,) = [t for t in targets(results) if t.name.startswith("p99 latency added")]
    assert row.value == 0.5
    assert row.passed is True
    assert row.shown == "0.50 ms (rounds -1.00 to +2.50)"
