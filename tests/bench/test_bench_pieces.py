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
from bench.storm import StormRound
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
    assert len(set(tokens)) == 3
    heads = [json.loads(_segment(t)) for t in storm]
    assert all(h["kid"].startswith("unknown-") for h in heads)


def _segment(token: str) -> bytes:
    head = token.split(".", maxsplit=1)[0]
    return base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))


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
        storm=[StormRound(1000, 2000, 1500, 9000, 40, 0, 1000, 0.3, {"UNAUTHENTICATED": 1000}, 1, 1)],
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
