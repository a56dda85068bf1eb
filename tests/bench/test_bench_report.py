"""The benchmark page rendered from fixed figures: no server, no load, no clock.

``full_results()`` fills every section (two rounds of each comparison, every scenario, every
piece) with made-up but well-formed figures; the checks are on the page's text: the methodology
prose of every section, every table, and "Not run" for the sections an empty run skipped.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from bench import grpc_section, http_section, variants
from bench.context import BenchResults, Round
from bench.inside import InsideRun
from bench.measure import LoadResult
from bench.memory import MemoryFigures
from bench.options import SECTIONS, BenchOptions
from bench.pieces import PIECES
from bench.report import render, targets
from bench.storm import BURSTS, BurstRun, StormRound
from bench.tools import MachineFacts
from bench.validation import ALGORITHMS, METRICS

TEMPLATE = Path(__file__).resolve().parents[2] / "bench" / "report_template.md"

_FACTS = MachineFacts(
    date="2026-01-02 03:04 UTC",
    cpus=2,
    cpu_model="a test CPU",
    kernel="6.0.0",
    python="3.11.0",
    versions={"grpcio": "1.0.0", "wrk": "wrk 4.1.0"},
    load_average="0.10 0.20 0.30",
)


def _load(seed: int, index: int) -> LoadResult:
    """A well-formed load result that differs per scenario (``index``) and round (``seed``)."""
    rps = 1000.0 + 37.0 * index + 11.0 * seed
    return LoadResult(
        requests=int(rps * 5),
        rps=rps,
        p50_us=800.0 + 13.0 * index + seed,
        p99_us=2400.0 + 29.0 * index + 7.0 * seed,
        errors=0,
        server_cpu_us=None if index == 3 else 300.0 + 5.0 * index - seed,
        tokens_exhausted=index == 5 and seed == 1,
        note="a note" if index == 2 else "",
    )


def _rounds(scenarios: list[str], count: int) -> list[Round]:
    return [{name: _load(seed, index) for index, name in enumerate(scenarios)} for seed in range(count)]


def _storm_round(seed: int, window: int) -> StormRound:
    bursts = {
        name: BurstRun(
            valid_p50_us=900.0 + 100.0 * index + seed,
            valid_p99_us=40_000.0 + 5_000.0 * index + 300.0 * seed,
            valid_in_window=window + index,
            valid_errors=0,
            seconds=0.5 + 0.1 * index,
            codes={"OK": 10} if name == "valid control" else {"UNAUTHENTICATED": 10},
        )
        for index, name in enumerate(BURSTS)
    }
    order = tuple(BURSTS[seed % 3 :] + BURSTS[: seed % 3])
    return StormRound(700.0, 3_000.0 + seed, bursts, order, discovery_fetches=1, jwks_fetches=1)


def full_results(*, smoke: bool = False, storm_window: int = 150) -> BenchResults:
    """Two rounds of every section, every scenario filled in."""
    options = BenchOptions.quick() if smoke else BenchOptions.full()
    results = BenchResults(facts=_FACTS, options=options)
    results.validation = {
        alg: {metric: [20.0 + 3.0 * a + m + 0.5 * r for r in range(2)] for m, metric in enumerate(METRICS)}
        for a, alg in enumerate(ALGORITHMS)
    }
    results.pieces = {name: [1.0 + index, 1.5 + index] for index, name in enumerate(PIECES)}
    results.grpc = _rounds(list(grpc_section.SCENARIOS), 2)
    results.inside = {
        name: InsideRun(
            load=_load(0, index),
            calls=12_345 * (index + 1),
            us_per_call={label: 2.0 + p + index for p, (label, _, _) in enumerate(variants.PIECES)},
        )
        for index, name in enumerate(("warm", "cold"))
    }
    http = [f"{s} {w}" for s in http_section.SYSTEMS for w in http_section.WHATS]
    results.http = _rounds(http, 2)
    results.storm = [_storm_round(seed, storm_window) for seed in range(2)]
    results.memory = MemoryFigures(
        step_requests=1000,
        rss_kib={"service": (50_000, 60_000, 60_600), "facade": (40_000, 45_000, 45_100)},
        requests_sent=(1000, 1000),
        errors=(0, 1),
        rps=(900.0, 950.0),
    )
    results.workers = {p: {1: _load(0, 1), 2: _load(1, 2)} for p in ("service", "facade")}
    results.notes = ["a note about the run"]
    results.elapsed_s = 600.0
    return results


def empty_results() -> BenchResults:
    """A run with every section left out (``--only`` named none)."""
    results = BenchResults(facts=_FACTS, options=dataclasses.replace(BenchOptions.full(), sections=()))
    results.skipped = {section: "not selected (--only)" for section in SECTIONS}
    return results


def _tables(text: str) -> list[str]:
    """The header row of every table on the page."""
    lines = text.splitlines()
    return [lines[i - 1] for i, line in enumerate(lines) if re.fullmatch(r"\|(-+:?\|)+", line)]


def test_a_full_run_renders_every_sections_method_and_every_table() -> None:
    text = render(full_results())
    for method in (
        "Every figure is measured next to its reference in the same run",
        "2,000 distinct tokens per algorithm; CPU time of one core",
        "4 connections x 8 streams, unary calls with an empty request message",
        "The Python of one call, measured in-process",
        "**Inside the running service.**",
        "wrk, one thread, 32 connections, the same Lua script for every run",
        "**Lever: a Unix socket between facade and service.**",
        "Our gRPC server (no facade) against Express, same token, per round:",
        "a burst of 1,000 concurrent calls fired into its middle",
        "- *rejection control*: distinct ES256 tokens of the same shape",
        "How to read them. The valid calls' p99 during any burst is about the burst's own length",
        "one of its 2 slowest calls",
        "wrk drives the facade (and through it the service) with 2,000 requests",
        "- service: SecureRoute warm, 1 worker 1,037 req/s, 2 workers 1,085 req/s (1.05x).",
        "- Cold validation costs the raw signature check plus about",
        "- gRPC: a SecureRoute call costs the service",
        "- HTTP (split facade): each request is an aiohttp request plus a gRPC call",
        "| `jwt_authn/extractor.py` | plain string operations to split the bearer value |",
        "- a note about the run",
        "<details><summary>Every round's figures</summary>",
    ):
        assert method in text, method
    assert "Not run" not in text
    assert "**Smoke run**" not in text
    assert _tables(text) == [
        "| target | measured | goal | result |",
        "| | |",
        "| alg | raw µs | cold µs | cold / raw | cold tokens/s/core | warm µs | warm authenticate µs "
        "| jwcrypto JWT µs | jwcrypto / raw |",
        "| scenario | req/s | p50 ms | p99 ms | server CPU µs/req | failed calls | note |",
        "| ratio | by req/s | by server CPU per request |",
        "| piece | µs per call |",
        "| piece | warm µs per call | cold µs per call |",
        "| scenario | req/s | p50 ms | p99 ms | server CPU µs/req | failed calls | note |",
        "| ratio | by req/s | by server CPU per request |",
        "| scenario | req/s | p50 ms | p99 ms | server CPU µs/req | failed calls | note |",
        "| ratio | by req/s | by server CPU per request |",
        "| ratio | by req/s | by server CPU per request |",
        "| round | order | issuer fetches in the storm (discovery + JWKS) | valid p50 ms alone → rejection "
        "control → valid control → storm | valid p99 ms, same order | p99 storm / alone "
        "| p99 storm / rejection control | p99 storm / valid control |",
        "| round | burst | burst answers | burst took ms | valid calls in window "
        "| valid calls, HTTP errors |",
        "| process | RSS before MiB | after 1,000 MiB | after 2,000 MiB | growth between the two |",
        "| where | choice | figure then |",
    ]
    # Every target row is on the page, each measured.
    for target in targets(full_results()):
        assert f"| {target.name} | {target.shown} | {target.goal} |" in text
        assert target.value is not None, target.name
    # No placeholder is left unfilled.
    assert "$" not in text


def test_every_word_of_the_template_reaches_the_page() -> None:
    """Each block's text between its placeholders is on one of the pages: full, smoke or empty."""
    pages = "".join(
        render(results) for results in (full_results(), full_results(smoke=True), empty_results())
    )
    blocks = re.split(r"^<!-- block: \w+ -->$", TEMPLATE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert len(blocks) > 20
    for block in blocks[1:]:
        for line in block.strip("\n").splitlines():
            for words in re.split(r"\$\w+", line):
                assert words in pages, words


def test_a_smoke_run_says_so_and_a_storm_of_few_calls_reads_its_slowest_call() -> None:
    text = render(full_results(smoke=True, storm_window=50))
    assert "**Smoke run** (`python -m bench --quick`)" in text
    assert "its p99 is its slowest call" in text


def test_an_empty_run_says_why_each_section_did_not_run() -> None:
    text = render(empty_results())
    assert text.count("Not run: not selected (--only).") == 6
    assert "## Where the time goes" not in text
    assert "## Notes" not in text
    assert "## Figures behind the guard's design choices" in text
    assert "$" not in text
