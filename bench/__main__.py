"""``python -m bench`` (``make bench``): run every benchmark side by side and write docs/benchmarks.md.

Installs what it needs first (apt-get h2load and wrk when missing and root; ``npm ci`` for the
Express peer), measures token validation in-process, then starts the real stack on loopback
(a LoopbackIssuer on a thread of this process, ``python -m service``, ``python -m http_facade``,
the Express peer) and runs the load, storm, memory and workers sections against it. The HTTP
section also runs a second facade over the service's Unix socket (a lever, measured beside the
TCP facade); every other section uses the TCP facade alone.

Usage:
    python -m bench                          # full run, about 12 minutes on 2 cores
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

from bench.context import LOAD_ALGORITHM, BenchContext
from bench.grpc_load import check_grpc_call, cold_pool_name, frame_file, h2load, run_grpc_round
from bench.http_load import UNIX_FACADE, check_http, run_http_round, warm_up
from bench.inside import run_inside
from bench.issuer import IssuerThread
from bench.memory import run_memory
from bench.options import SECTIONS, BenchOptions
from bench.pieces import run_pieces
from bench.report import render, targets
from bench.results import BenchResults
from bench.stack import AUDIENCE, Stack
from bench.storm import prepare_storm, run_storm_round
from bench.tokens import TokenMint
from bench.tools import Tools, ensure_tools, machine_facts
from bench.validation import run_validation
from bench.workers import run_workers, workers_available

__all__ = ["main"]


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _parse(argv: Sequence[str] | None) -> tuple[BenchOptions, Path | None]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round of everything")
    parser.add_argument("--rounds", type=int, help="rounds of each comparison (default 5; quick 1)")
    parser.add_argument("--duration", type=float, help="measured seconds per load run (default 5)")
    parser.add_argument("--memory-requests", type=int, help="requests per memory step (default 50000)")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, help="report path (default docs/benchmarks.md)")
    parser.add_argument("--workdir", type=Path, help="keep token files and logs here (default: a temp dir)")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get or npm ci anything")
    parser.add_argument("--log-level", help="service and facade log level (default WARNING)")
    args = parser.parse_args(argv)
    options = BenchOptions.quick() if args.quick else BenchOptions.full()
    changes: dict[str, object] = {"install": not args.no_install}
    if args.rounds is not None:
        changes["rounds"] = args.rounds
    if args.duration is not None:
        changes["load_duration_s"] = args.duration
    if args.memory_requests is not None:
        changes["memory_step_requests"] = args.memory_requests
    if args.only:
        changes["sections"] = tuple(s.strip() for s in args.only.split(",") if s.strip())
    if args.output is not None:
        changes["output"] = args.output
    if args.log_level:
        changes["log_level"] = args.log_level.upper()
    try:
        return dataclasses.replace(options, **changes), args.workdir  # type: ignore[arg-type]
    except ValueError as err:
        parser.error(str(err))


def _missing(tools: Tools, *names: str) -> str | None:
    absent = [name for name in names if getattr(tools, name) is None]
    return f"{', '.join(absent)} not available" if absent else None


def _grpc_section(ctx: BenchContext, results: BenchResults) -> None:
    tools, service = ctx.tools, ctx.service
    assert service is not None
    if (why := _missing(tools, "h2load", "node")) is not None:
        results.skipped["grpc"] = why
        return
    for method in ("Health", "SecureRoute"):  # unmeasured warm-up
        h2load(ctx, service.port, method, ctx.warm_token, pids=[service.pid], name=f"warmup-{method}")
    for index in range(ctx.options.rounds):
        _say(f"gRPC round {index + 1}/{ctx.options.rounds}")
        results.grpc.append(run_grpc_round(ctx, index))
    _say("gRPC: each piece of the request path timed inside a second service")
    # Round 1's cold pool: every token in it is new to the second service.
    results.inside = run_inside(ctx, ctx.token_path(cold_pool_name(0)))


def _http_section(ctx: BenchContext, results: BenchResults) -> None:
    tools = ctx.tools
    if (why := _missing(tools, "wrk")) is not None:
        results.skipped["http"] = why
        return
    assert ctx.service_socket is not None
    _say(f"starting a second facade over the service's Unix socket {ctx.service_socket}")
    ctx.facade_unix = ctx.stack.start_facade(f"unix:{ctx.service_socket}", name=UNIX_FACADE)
    systems: tuple[str, ...] = ("facade", UNIX_FACADE)
    if tools.express_ready and tools.node is not None:
        _say("starting the Express peer")
        ctx.express = ctx.stack.start_express(tools.node, ctx.issuer.url)
        systems = (*systems, "express")
    else:
        results.notes.append("The Express peer did not run (node or its packages are missing).")
    servers = {"facade": ctx.facade, UNIX_FACADE: ctx.facade_unix, "express": ctx.express}
    for system in systems:
        server = servers[system]
        assert server is not None
        url = f"http://127.0.0.1:{server.port}/secure-route"
        if (problem := check_http(url, ctx.warm_token, "Super secret stuff")) is not None:
            raise RuntimeError(f"{system} refuses the benchmark's token: {problem}")
    rates = warm_up(ctx, systems)
    for index in range(ctx.options.rounds):
        _say(f"HTTP round {index + 1}/{ctx.options.rounds}")
        results.http.append(run_http_round(ctx, index, systems, rates))
    # Only this section measures the lever: the later ones see the stack they always saw.
    ctx.facade_unix.stop()
    ctx.facade_unix = None


def _storm_section(ctx: BenchContext, results: BenchResults) -> None:
    if (why := _missing(ctx.tools, "h2load")) is not None:
        results.skipped["storm"] = why
        return
    _say("JWKS storm: one unmeasured warm-up burst")
    valid_control = prepare_storm(ctx)
    for index in range(ctx.options.rounds):
        _say(f"JWKS storm round {index + 1}/{ctx.options.rounds}")
        results.storm.append(run_storm_round(ctx, index, valid_control))


def _memory_section(ctx: BenchContext, results: BenchResults) -> None:
    if (why := _missing(ctx.tools, "wrk")) is not None:
        results.skipped["memory"] = why
        return
    _say(f"memory: 2 x {ctx.options.memory_step_requests:,} distinct tokens through the facade")
    cold = [r["facade /secure-route cold"].rps for r in results.http if "facade /secure-route cold" in r]
    results.memory = run_memory(ctx, rate_estimate=min(cold) if cold else None)


def _workers_section(ctx: BenchContext, results: BenchResults) -> None:
    results.workers_available = workers_available()
    if any(results.workers_available.values()):
        _say("workers: 1 vs 2")
        results.workers = run_workers(ctx, results.workers_available)


def _run_stack(options: BenchOptions, tools: Tools, workdir: Path, results: BenchResults) -> None:
    """Start the issuer, the token mint and the servers, then run each selected section."""
    sections = set(options.sections)
    with (
        IssuerThread(algorithms=(LOAD_ALGORITHM, "ES256"), audience=AUDIENCE) as issuer,
        TokenMint(issuer.url, AUDIENCE, issuer.keys) as mint,
        Stack(workdir, log_level=options.log_level) as stack,
    ):
        ctx = BenchContext(
            options=options, tools=tools, workdir=workdir, issuer=issuer, mint=mint, stack=stack
        )
        frame = frame_file(workdir)
        ctx.warm_token = mint.one(LOAD_ALGORITHM)
        _say(f"starting the service (issuer {issuer.url})")
        extra: list[str] = []
        if "http" in sections:
            # The HTTP section's second facade reaches the service here (its TCP port stays as it was).
            ctx.service_socket = stack.unix_socket_path("grpc.sock")
            extra = ["--listen-unix", str(ctx.service_socket)]
        service = ctx.service = stack.start_service(issuer.url, *extra)
        if tools.nghttp is not None:
            for method in ("Health", "SecureRoute"):
                problem = check_grpc_call(tools.nghttp, service.port, method, ctx.warm_token, frame)
                if problem:
                    raise RuntimeError(f"the service does not answer the benchmark's request: {problem}")
        if "grpc" in sections:
            _grpc_section(ctx, results)
        if sections & {"http", "memory", "workers"}:
            _say("starting the facade")
            ctx.facade = stack.start_facade(service.port)
        if "http" in sections:
            _http_section(ctx, results)
        if "storm" in sections:
            _storm_section(ctx, results)
        if "memory" in sections:
            _memory_section(ctx, results)
        if "workers" in sections:
            _workers_section(ctx, results)
        results.notes.extend(ctx.notes)


def main(argv: Sequence[str] | None = None) -> None:
    options, kept_workdir = _parse(argv)
    started = time.monotonic()
    sections = set(options.sections)
    needs_stack = bool(sections - {"validation"})
    tools = ensure_tools(install=options.install and needs_stack) if needs_stack else None
    results = BenchResults(facts=machine_facts(), options=options)
    if tools is not None:
        results.notes.extend(tools.notes)
    for section in SECTIONS:
        if section not in sections:
            results.skipped[section] = "not selected (--only)"

    if "validation" in sections:
        _say(
            f"token validation: {options.rounds} rounds x {options.validation_tokens:,} tokens per algorithm"
        )
        results.validation = run_validation(options)
    if "grpc" in sections:
        _say("in-process cost of the interceptor and the handlers")
        results.pieces = run_pieces(options)
    if needs_stack and tools is not None:
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
