"""``python -m bench`` (``make bench``): run every benchmark side by side and write docs/benchmarks.md.

Installs what it needs first (apt-get h2load and wrk when missing and root; ``npm ci`` for the
Express peer; PyJWT comes with the dev extra), measures token validation and the pieces of a call
in-process, then starts the real stack on loopback (the issuer on a thread of this process, ``python
-m service``, its guard-off variant, the PyJWT peer, the facades, the Express peer) and runs the
load, storm, memory and workers sections against it.

Usage:
    python -m bench                          # full run, about 15 minutes on 2 cores
    python -m bench --quick                  # one short round of everything (a smoke run)
    python -m bench --rounds 5 --only validation,grpc
    python -m bench --output /tmp/bench.md --workdir /tmp/bench-files
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import grpc_section, h2load, http_section, storm
from bench.context import LOAD_ALGORITHM, BenchContext, BenchResults
from bench.inside import run_inside
from bench.memory import run_memory
from bench.options import SECTIONS, BenchOptions
from bench.pieces import run_pieces
from bench.report import render, targets
from bench.stack import Stack
from bench.tokens import TokenMint
from bench.tools import Tools, ensure_tools, machine_facts
from bench.validation import run_validation
from bench.workers import run_workers

__all__ = ["main"]

#: The tools each section on the stack needs.
_NEEDS = {"grpc": ("h2load", "nghttp", "node"), "http": ("wrk",), "storm": ("h2load", "nghttp"),
          "memory": ("wrk",), "workers": ("h2load", "nghttp", "wrk")}  # fmt: skip


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _parse(argv: Sequence[str] | None) -> tuple[BenchOptions, Path | None]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round of everything (a smoke run)")
    parser.add_argument("--rounds", type=int, help="rounds of each comparison (default 5; quick 1)")
    parser.add_argument("--duration", type=float, help="measured seconds per load run (default 5)")
    parser.add_argument("--memory-requests", type=int, help="requests per memory step (default 50000)")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, help="report path (default docs/benchmarks.md)")
    parser.add_argument("--workdir", type=Path, help="keep token files and logs here (default: a temp dir)")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get or npm ci anything")
    parser.add_argument("--log-level", help="service and facade log level (default INFO, the programs' own)")
    args = parser.parse_args(argv)
    changes = {
        "install": not args.no_install, "rounds": args.rounds, "load_duration_s": args.duration,
        "memory_step_requests": args.memory_requests, "output": args.output,
        "sections": tuple(s.strip() for s in args.only.split(",") if s.strip()) if args.only else None,
        "log_level": args.log_level.upper() if args.log_level else None,
    }  # fmt: skip
    try:
        options = BenchOptions.quick() if args.quick else BenchOptions.full()
        return dataclasses.replace(
            options, **{k: v for k, v in changes.items() if v is not None}
        ), args.workdir
    except ValueError as err:
        parser.error(str(err))


def _run_stack(options: BenchOptions, tools: Tools, workdir: Path, results: BenchResults) -> None:
    """Start the issuer, the token mint and the service, then run each selected section."""
    sections = [s for s in SECTIONS if s in options.sections and s in _NEEDS]
    for section in list(sections):
        if absent := [tool for tool in _NEEDS[section] if getattr(tools, tool) is None]:
            results.skipped[section] = f"{', '.join(absent)} not available"
            sections.remove(section)
    if not sections:
        return
    with (
        Stack(workdir, log_level=options.log_level, algorithms=(LOAD_ALGORITHM, "ES256")) as stack,
        TokenMint(stack.issuer_url, "secureroute", stack.keys) as mint,
    ):
        ctx = BenchContext(options=options, tools=tools, workdir=workdir, stack=stack, mint=mint)
        ctx.warm_token = stack.ready_token = mint.one(LOAD_ALGORITHM)
        ctx.service_socket = stack.unix_socket_path("grpc.sock")
        _say(f"starting the service (issuer {stack.issuer_url})")
        service = ctx.servers["service"] = stack.start_grpc(
            "service", stack.service_argv("--listen-unix", str(ctx.service_socket))
        )
        assert tools.nghttp is not None
        for method in ("Health", "SecureRoute"):
            if problem := h2load.check_call(tools.nghttp, service.port, method, ctx.warm_token,
                                            h2load.frame_file(workdir)):  # fmt: skip
                raise RuntimeError(f"the service does not answer the benchmark's request: {problem}")
        if "grpc" in sections:
            _say("gRPC: starting the guard-off service and the PyJWT peer")
            grpc_section.start_systems(ctx)
            health_rps = 6000.0
            for index in range(options.rounds):
                _say(f"gRPC round {index + 1}/{options.rounds}")
                results.grpc.append(grpc_section.run_round(ctx, index, health_rps))
                health_rps = results.grpc[-1]["service Health"].rps
            _say("gRPC: each piece of the request path timed inside a second service")
            # Round 1's cold pool: every token in it is new to the timed service.
            results.inside = run_inside(ctx, ctx.workdir / f"{grpc_section.cold_pool_name(0)}.tokens")
        if {"http", "memory", "workers"} & set(sections):
            _say("starting the facades and the Express peer")
            systems = http_section.start_systems(ctx)
        if "http" in sections:
            rates = http_section.warm_up(ctx, systems)
            for index in range(options.rounds):
                _say(f"HTTP round {index + 1}/{options.rounds}")
                results.http.append(http_section.run_round(ctx, index, systems, rates))
        if "storm" in sections:
            _say("JWKS storm: one unmeasured warm-up burst")
            valid_control = storm.prepare(ctx)
            for index in range(options.rounds):
                _say(f"JWKS storm round {index + 1}/{options.rounds}")
                results.storm.append(storm.run_round(ctx, index, valid_control))
        if "memory" in sections:
            _say(f"memory: 2 x {options.memory_step_requests:,} distinct tokens through the facade")
            cold = [
                r["facade /secure-route cold"].rps for r in results.http if "facade /secure-route cold" in r
            ]
            results.memory = run_memory(ctx, rate_estimate=min(cold) if cold else None)
        if "workers" in sections:
            _say("workers: 1 vs 2")
            results.workers = run_workers(ctx)
        results.notes.extend(ctx.notes)


def main(argv: Sequence[str] | None = None) -> None:
    options, kept_workdir = _parse(argv)
    started = time.monotonic()
    results = BenchResults(facts=machine_facts(), options=options)
    results.skipped = {s: "not selected (--only)" for s in SECTIONS if s not in options.sections}
    if "validation" in options.sections:
        _say(
            f"token validation: {options.rounds} rounds x {options.validation_tokens:,} tokens per algorithm"
        )
        results.validation = run_validation(options)
    if "grpc" in options.sections:
        _say("in-process cost of the pieces of a call")
        results.pieces = run_pieces(options)
    if set(options.sections) & set(_NEEDS):
        tools = ensure_tools(install=options.install)
        results.notes.extend(tools.notes)
        if kept_workdir is not None:
            kept_workdir.mkdir(parents=True, exist_ok=True)
            _run_stack(options, tools, kept_workdir, results)
        else:
            with tempfile.TemporaryDirectory(prefix="secureroute-bench-") as temporary:
                _run_stack(options, tools, Path(temporary), results)
    results.elapsed_s = time.monotonic() - started
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(render(results), encoding="utf-8")
    _say(f"wrote {options.output} in {results.elapsed_s / 60:.1f} min")
    for target in targets(results):
        verdict = "info" if target.informative else {True: "pass", False: "MISS", None: "n/a"}[target.passed]
        print(f"{verdict:5s} {target.name}: {target.shown} (goal {target.goal})")


if __name__ == "__main__":
    main()
