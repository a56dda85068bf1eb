"""HTTP load with wrk: the one program, the split facade and the original Express system,
/secure-route and /health.

Every run uses the same wrk script, so the generator does the same work in each: warm runs reuse
one token, cold runs take each token of a file once, and /health runs carry the same fresh tokens
as the cold runs (the facade forwards them to the public Health RPC; Express ignores them), so only
the token check differs. A lever is measured beside them: a second facade (``facade-unix``) that
reaches the same service over its Unix socket instead of loopback TCP.

Systems are a table: each has a server and the processes whose CPU its requests cost. The one
program (``python -m secureroute``: gRPC and HTTP in one process, the facade answering in-process)
is one entry with its own server and pid, and its own guard (so its cold runs may take the same
tokens as the facade's); its scenarios, tables and per-round ratios follow from the table.

Usage:
    systems = start_systems(ctx)                 # {"one": [pid], "facade": [pids], ..., "express": [...]}
    results = run_round(ctx, round_index, systems, rates)   # {"facade /health": LoadResult, ...}
"""

from __future__ import annotations

import dataclasses
import functools
import sys

from bench import wrk
from bench.context import LOAD_ALGORITHM, BenchContext, Round
from bench.measure import in_turn
from bench.stack import ANY_PORT, AUDIENCE
from bench.tools import EXPRESS_DIR

__all__ = [
    "BARE",
    "GUARD_OFF",
    "ONE_PROGRAM",
    "SYSTEMS",
    "UNIX_FACADE",
    "WHATS",
    "run_round",
    "start_systems",
]

#: The scenarios each system runs, in this order.
WHATS = ("/health", "/secure-route warm", "/secure-route cold")
UNIX_FACADE = "facade-unix"
ONE_PROGRAM = "one"
#: The ceiling: bare aiohttp handlers on our loop (``bench/peers/bare.py``), /health and /secure-route
#: warm only (it reads no token, and its rate must not size the token pools).
BARE = "bare-aiohttp"
#: The one program with its guards replaced by a pass-through (``bench.variants one-guard-off``):
#: /secure-route only, the same tokens sent; one / this is the guard's cost over HTTP.
GUARD_OFF = "one-guard-off"
#: Every system the section knows, in report order.
SYSTEMS = (ONE_PROGRAM, GUARD_OFF, "facade", UNIX_FACADE, "express", BARE)
#: Systems whose rates never size a token pool.
_NOT_SIZING = frozenset({BARE, GUARD_OFF})
_SHARED_POOL_NOTE = "may have reused the other facade's cold tokens (cache hits): the pool was too small"


def start_systems(ctx: BenchContext) -> dict[str, list[int]]:
    """Start the HTTP systems that can run; returns each one's measured pids (a facade's work
    includes the service's, so both count)."""
    stack, service = ctx.stack, ctx.servers["service"]
    ctx.servers["facade"] = stack.start_http("facade", stack.facade_argv(f"127.0.0.1:{service.port}"))
    ctx.servers[UNIX_FACADE] = stack.start_http(UNIX_FACADE, stack.facade_argv(f"unix:{ctx.service_socket}"))
    systems = {name: [ctx.servers[name].pid, service.pid] for name in ("facade", UNIX_FACADE)}
    ctx.servers[ONE_PROGRAM] = stack.start_http(ONE_PROGRAM, stack.one_program_argv())
    one = stack.one_program_argv()
    guard_off = ["-m", "bench.variants", "one-guard-off", "--principal-token", ctx.warm_token]
    ctx.servers[GUARD_OFF] = stack.start_http(GUARD_OFF, [one[0], *guard_off, *one[3:]])
    systems = {
        ONE_PROGRAM: [ctx.servers[ONE_PROGRAM].pid],
        GUARD_OFF: [ctx.servers[GUARD_OFF].pid],
        **systems,
    }
    if ctx.tools.express_ready and ctx.tools.node is not None:
        argv = [ctx.tools.node, "server.js", "--listen", ANY_PORT, "--issuer", stack.issuer_url]
        ctx.servers["express"] = stack.start_http("express", [*argv, "--audience", AUDIENCE], cwd=EXPRESS_DIR)
        systems["express"] = [ctx.servers["express"].pid]
    else:
        ctx.notes.append("The Express peer did not run (node or its packages are missing).")
    bare = [sys.executable, "-m", "bench.peers.bare", "http", "--listen", ANY_PORT]
    ctx.servers[BARE] = stack.start_http(BARE, bare)
    systems[BARE] = [ctx.servers[BARE].pid]
    for system in systems:
        url = f"http://127.0.0.1:{ctx.servers[system].port}/secure-route"
        if (problem := wrk.check(url, ctx.warm_token, "Super secret stuff")) is not None:
            raise RuntimeError(f"{system} refuses the benchmark's token: {problem}")
    return systems


def warm_up(ctx: BenchContext, systems: dict[str, list[int]]) -> dict[str, float]:
    """A short unmeasured run per system; returns each one's /health rate, to size token pools."""
    warm_file = ctx.token_file("warm", [ctx.warm_token])
    rates = {}
    for system, pids in systems.items():
        url = f"http://127.0.0.1:{ctx.servers[system].port}"
        wrk.run(ctx, f"{url}/secure-route", warm_file, pids=pids, duration_s=max(1.0, ctx.options.warmup_s))
        rates[system] = wrk.run(ctx, f"{url}/health", warm_file, pids=pids, duration_s=1.0).rps
    return rates


def run_round(
    ctx: BenchContext, round_index: int, systems: dict[str, list[int]], rates: dict[str, float]
) -> Round:
    """Every system's scenarios back to back, the systems in this round's turn.

    One pool of fresh tokens serves the round: /health and cold /secure-route of each system.
    Both facades share one service (and its token cache), so the Unix-socket facade takes the pool
    from its far end: the two cold runs send disjoint tokens as long as together they use less
    than the whole pool (checked). ``rates`` (each system's /health rate) sizes the pool and is
    updated with this round's.
    """
    pool_size = ctx.pool_size(max(rate for system, rate in rates.items() if system not in _NOT_SIZING))
    tokens = ctx.mint.distinct(LOAD_ALGORITHM, pool_size)
    pool = ctx.token_file(f"http-cold-{round_index}", tokens)
    cold_files = dict.fromkeys(systems, pool)
    cold_files[UNIX_FACADE] = ctx.token_file(f"http-cold-{round_index}-reversed", tokens[::-1])
    warm_file = ctx.token_file("warm", [ctx.warm_token])

    def system_runs(system: str) -> Round:
        base, pids = f"http://127.0.0.1:{ctx.servers[system].port}", systems[system]
        runs = {}
        if system != GUARD_OFF:
            health = wrk.run(ctx, f"{base}/health", warm_file if system == BARE else pool, pids=pids)
            rates[system] = health.rps
            runs[f"{system} /health"] = health
        runs[f"{system} /secure-route warm"] = wrk.run(ctx, f"{base}/secure-route", warm_file, pids=pids)
        if system != BARE:
            runs[f"{system} /secure-route cold"] = wrk.run(
                ctx, f"{base}/secure-route", cold_files[system], pids=pids
            )
        return runs

    ran = in_turn(round_index, {system: functools.partial(system_runs, system) for system in systems})
    results = {name: result for runs in ran.values() for name, result in runs.items()}
    cold_files[UNIX_FACADE].unlink()  # a second copy of the pool, tens of MB: not worth keeping
    facades = [f"{s} /secure-route cold" for s in ("facade", UNIX_FACADE)]
    taken = sum(results[f].requests + results[f].errors + ctx.options.http_connections for f in facades)
    if taken > pool_size:  # each run took at most a token per request, plus one per waiting connection
        names = list(systems)
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        later = max(facades, key=lambda name: order.index(name.split()[0]))
        results[later] = dataclasses.replace(results[later], note=_SHARED_POOL_NOTE)
    return results
