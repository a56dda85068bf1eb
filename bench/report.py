"""Render a run's results as ``docs/benchmarks.md``: targets with pass/miss, then each section.

Ratios are computed per round from runs made back to back, then the median is taken, so
load from other processes on a shared machine hits both sides of a ratio alike.

Usage:
    text = render(results)
    Path("docs/benchmarks.md").write_text(text)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench import grpc_load, http_load, timed_service
from bench.measure import LoadResult
from bench.results import BenchResults
from bench.stats import median_of, ratio_of
from bench.storm import StormRound
from bench.validation import ALGORITHMS

__all__ = ["CEILING_ROUTES", "EXPRESS_TARGETS", "Target", "render", "targets"]


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    value: float | None
    goal: str
    passed: bool | None
    shown: str
    #: A figure that explains another, with no goal of the issue behind it: no pass or miss.
    informative: bool = False


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def _ms(value_us: float | None) -> str:
    return _fmt(None if value_us is None else value_us / 1000, 2)


def _per_round_ratio(
    rounds: Sequence[dict[str, LoadResult]],
    top: str,
    bottom: str,
    field: Callable[[LoadResult], float | None],
) -> float | None:
    return median_of(
        ratio_of(field(r[top]), field(r[bottom])) if top in r and bottom in r else None for r in rounds
    )


def _rps(result: LoadResult) -> float | None:
    return result.rps


def _cpu_capacity(result: LoadResult) -> float | None:
    """Requests per CPU-second: the inverse of CPU per request (so ratios read like rps ratios)."""
    return 1e6 / result.server_cpu_us if result.server_cpu_us else None


def _validation_ratio(results: BenchResults, alg: str, top: str, bottom: str) -> float | None:
    row = results.validation.get(alg)
    if not row:
        return None
    return median_of(ratio_of(a, b) for a, b in zip(row[top], row[bottom], strict=True))


def _check(value: float | None, goal: float, *, at_most: bool) -> bool | None:
    if value is None:
        return None
    return value <= goal if at_most else value >= goal


#: The targets against the Express original: (name, our scenario, Express's scenario, goal).
EXPRESS_TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("facade /secure-route warm / Express /secure-route warm, req/s", "facade /secure-route warm",
     "express /secure-route warm", 1.5),
    ("facade /secure-route cold / Express /secure-route cold, req/s", "facade /secure-route cold",
     "express /secure-route cold", 1.0),
    ("gRPC SecureRoute warm (h2load) / Express /secure-route warm, req/s", "h2load SecureRoute warm",
     "express /secure-route warm", 2.0),
)  # fmt: skip
#: For each of EXPRESS_TARGETS, our scenario on the same server with no authentication at all (the
#: same load, the same hop to the service): a ratio our authenticated route cannot beat.
CEILING_ROUTES = ("facade /health", "facade /health", "h2load Health")


def _with_http(results: BenchResults) -> list[dict[str, LoadResult]]:
    """Each round's gRPC and HTTP runs in one dict: the targets against Express pair them."""
    return [{**g, **h} for g, h in zip(results.grpc, results.http, strict=False)]


def _ceiling(merged: Sequence[dict[str, LoadResult]], index: int) -> float | None:
    """The ceiling of ``EXPRESS_TARGETS[index]``: our unauthenticated route over Express's."""
    return (
        _per_round_ratio(merged, CEILING_ROUTES[index], EXPRESS_TARGETS[index][2], _rps) if merged else None
    )


def targets(results: BenchResults) -> list[Target]:
    """The issue's targets, measured."""
    rows: list[Target] = []
    for alg, goal in (("RS256", 2.5), ("ES256", 1.5)):
        value = _validation_ratio(results, alg, "cold", "raw")
        rows.append(
            Target(f"{alg} cold validation / raw cryptography verify", value, f"≤ {goal}x",
                   _check(value, goal, at_most=True), _fmt(value, 2, "x"))
        )  # fmt: skip
    if results.validation:
        # The cache hit is one code path whatever the algorithm: the spread between algorithms is noise.
        per_alg = [median_of(results.validation[alg]["warm"]) for alg in results.validation]
        warm = median_of(per_alg)
        spread = f" ({_fmt(min(v for v in per_alg if v), 2)} to {_fmt(max(v for v in per_alg if v), 2)})"
        rows.append(
            Target("warm validation (cache hit), median over the algorithms", warm, "≤ 2 µs",
                   _check(warm, 2.0, at_most=True), _fmt(warm, 2, " µs") + spread)
        )  # fmt: skip
    for name, top, bottom, goal in (
        ("gRPC SecureRoute warm / Health, req/s (h2load)", "h2load SecureRoute warm", "h2load Health", 0.95),
        ("gRPC SecureRoute cold / Health, req/s (h2grpc)", "h2grpc SecureRoute cold", "h2grpc Health", 0.85),
    ):
        value = _per_round_ratio(results.grpc, top, bottom, _rps) if results.grpc else None
        rows.append(
            Target(name, value, f"≥ {goal}x", _check(value, goal, at_most=False), _fmt(value, 2, "x"))
        )
    merged = _with_http(results)
    for index, (name, top, bottom, goal) in enumerate(EXPRESS_TARGETS):
        value = _per_round_ratio(merged, top, bottom, _rps) if merged else None
        rows.append(
            Target(name, value, f"≥ {goal}x", _check(value, goal, at_most=False), _fmt(value, 2, "x"))
        )
        ceiling, unauthenticated = _ceiling(merged, index), CEILING_ROUTES[index]
        rows.append(
            Target(f"ceiling of the row above: {unauthenticated} (no authentication) / {bottom}, req/s",
                   ceiling, f"≥ {goal}x, or the goal above is out of reach whatever authentication costs "
                   "(informative)", None, _fmt(ceiling, 2, "x"), informative=True)
        )  # fmt: skip
    unix_warm = f"{http_load.UNIX_FACADE} /secure-route warm"
    if any(unix_warm in r for r in results.http):
        lever = _per_round_ratio(results.http, unix_warm, "facade /secure-route warm", _rps)
        rows.append(
            Target("lever: facade over a Unix socket / over TCP, /secure-route warm, req/s", lever,
                   "> 1 if the lever pays (informative: sections 3 and 4)", None, _fmt(lever, 2, "x"),
                   informative=True)
        )  # fmt: skip
    health_half, secure_half = grpc_load.HALF_LOAD_SCENARIOS
    added_per_round = [
        (r[secure_half].p99_us - r[health_half].p99_us) / 1000
        for r in results.grpc
        if secure_half in r and health_half in r
    ]
    added_per_round = [v for v in added_per_round if not math.isnan(v)]
    added_ms = median_of(added_per_round)
    shown = _fmt(added_ms, 2, " ms")
    if len(added_per_round) > 1:
        # The spread says whether the median is a measurement or the machine's noise.
        shown += f" (rounds {min(added_per_round):+.2f} to {max(added_per_round):+.2f})"
    rows.append(
        Target("p99 latency added by authentication at half the saturating load (gRPC, warm; "
               "SecureRoute and Health in one window)", added_ms,
               "≤ 1 ms", _check(added_ms, 1.0, at_most=True), shown)
    )  # fmt: skip
    if results.memory is not None:
        for process in ("service", "facade"):
            growth = results.memory.growth(process)
            rows.append(
                Target(f"{process} RSS growth, {results.memory.step_requests:,} → "
                       f"{2 * results.memory.step_requests:,} distinct tokens",
                       growth, "≤ 10 %", _check(growth, 0.10, at_most=True), _fmt(growth * 100, 1, " %"))
            )  # fmt: skip
    if results.storm:
        worst = max(s.discovery_fetches + s.jwks_fetches for s in results.storm)
        rows.append(
            Target(f"issuer fetches per storm of {results.options.storm_requests:,} unknown kids "
                   "(worst round)", worst, "≤ 2 (one refresh: discovery + JWKS)", worst <= 2, str(worst))
        )  # fmt: skip
        p99_ratio = median_of(ratio_of(s.storm.valid_p99_us, s.baseline_p99_us) for s in results.storm)
        rows.append(
            Target("valid calls' p99 during a storm / without it", p99_ratio, "≤ 1.2x",
                   _check(p99_ratio, 1.2, at_most=True), _fmt(p99_ratio, 2, "x"))
        )  # fmt: skip
        control_ratio = _storm_ratio(results.storm, "storm", "rejection control")
        rows.append(
            Target("valid calls' p99 during the storm / during a same-size burst of foreign-issuer tokens "
                   "(rejected, no key-set work; section 5)", control_ratio,
                   "≈ 1 (informative: isolates the unknown-kid handling)", None, _fmt(control_ratio, 2, "x"),
                   informative=True)
        )  # fmt: skip
    return rows


def _verdict(target: Target) -> str:
    if target.informative:
        return "informative" if target.value is not None else "not measured"
    return {True: "pass", False: "**miss**", None: "not measured"}[target.passed]


def _machine(results: BenchResults) -> list[str]:
    facts, options = results.facts, results.options
    lines = [
        "| | |",
        "|---|---|",
        f"| date | {facts.date} |",
        f"| CPUs (nproc) | {facts.cpus} |",
        f"| CPU model | {facts.cpu_model} |",
        f"| kernel | {facts.kernel} |",
        f"| Python | {facts.python} |",
    ]
    lines += [f"| {name} | {version} |" for name, version in facts.versions.items()]
    lines += [
        f"| load average at start | {facts.load_average} (the machine is shared: hence ratios) |",
        f"| rounds | {options.rounds} (figures are medians over rounds) |",
        f"| each load run | {options.warmup_s:g} s warm-up + {options.load_duration_s:g} s measured |",
        f"| service/facade log level | {options.log_level} |",
        f"| whole run | {results.elapsed_s / 60:.1f} min |",
    ]
    return lines


def _validation(results: BenchResults) -> list[str]:
    if not results.validation:
        return [f"Not run: {results.skipped.get('validation', 'not selected')}."]
    lines = [
        f"{results.options.validation_tokens:,} distinct tokens per algorithm; CPU time of one core "
        "(`time.process_time`), median of the rounds. *raw*: `cryptography`'s verify of the same "
        "signatures with the same key; *cold*: `Authenticator.verify` of each token once (parse, header "
        "rules, key lookup, signature, claims, principal, cache insert); *warm*: `verify` of a cached "
        "token; *warm authenticate*: what the interceptor calls (extract + policy + verify + authorize); "
        '*jwcrypto JWT*: `JWT(jwt=..., key=JWKSet, expected_type="JWS", algs=[alg], check_claims=...)`.',
        "",
        "| alg | raw µs | cold µs | cold / raw | cold tokens/s/core | warm µs | warm authenticate µs "
        "| jwcrypto JWT µs | jwcrypto / raw |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for alg in ALGORITHMS:
        row = results.validation.get(alg)
        if not row:
            continue
        cold = median_of(row["cold"])
        lines.append(
            f"| {alg} | {_fmt(median_of(row['raw']), 1)} | {_fmt(cold, 1)} "
            f"| {_fmt(_validation_ratio(results, alg, 'cold', 'raw'), 2, 'x')} "
            f"| {_fmt(1e6 / cold if cold else None, 0)} | {_fmt(median_of(row['warm']), 2)} "
            f"| {_fmt(median_of(row['warm_authenticate']), 2)} | {_fmt(median_of(row['jwcrypto']), 1)} "
            f"| {_fmt(_validation_ratio(results, alg, 'jwcrypto', 'raw'), 2, 'x')} |"
        )
    return lines


def _load_table(rounds: Sequence[dict[str, LoadResult]], scenarios: Sequence[str]) -> list[str]:
    lines = [
        "| scenario | req/s | p50 ms | p99 ms | server CPU µs/req | failed calls | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in scenarios:
        runs = [r[name] for r in rounds if name in r]
        if not runs:
            continue
        notes = sorted(
            {"token pool ran out: req/s is a lower bound" for r in runs if r.tokens_exhausted}
            | {r.note for r in runs if r.note}
        )
        lines.append(
            f"| {name} | {_fmt(median_of(r.rps for r in runs), 0)} "
            f"| {_ms(median_of(r.p50_us for r in runs))} | {_ms(median_of(r.p99_us for r in runs))} "
            f"| {_fmt(median_of(r.server_cpu_us for r in runs), 0)} "
            f"| {sum(r.errors for r in runs)} | {'; '.join(notes)} |"
        )
    return lines


def _ratio_rows(rounds: Sequence[dict[str, LoadResult]], pairs: Sequence[tuple[str, str, str]]) -> list[str]:
    lines = [
        "| ratio | by req/s | by server CPU per request |",
        "|---|---:|---:|",
    ]
    for label, top, bottom in pairs:
        by_rps = _per_round_ratio(rounds, top, bottom, _rps)
        by_cpu = _per_round_ratio(rounds, top, bottom, _cpu_capacity)
        if by_rps is None and by_cpu is None:
            continue
        lines.append(f"| {label} | {_fmt(by_rps, 2, 'x')} | {_fmt(by_cpu, 2, 'x')} |")
    return lines


def _pieces(results: BenchResults) -> list[str]:
    if not results.pieces:
        return []
    lines = [
        "",
        "The Python that differs between the two calls, measured in-process (no network, no gRPC core; "
        "CPU time per call, median of the rounds):",
        "",
        "| piece | µs per call |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {_fmt(median_of(values), 1)} |" for name, values in results.pieces.items()]
    return lines


def _inside(results: BenchResults) -> list[str]:
    runs = results.inside
    if not runs:
        return []
    names = [name for name in ("warm", "cold") if name in runs]
    lines = [
        "",
        "**Inside the running service.** A second service, `python -m bench.timed_service` (the same "
        "service with a `perf_counter` timer around each piece of the request path), ran one warm load "
        "(h2load, one reused token) and one cold load (h2grpc, round 1's fresh tokens), once each: a "
        "breakdown, not a median. Mean µs per SecureRoute call; rows nest (*authenticate* holds the "
        "rows below it but the reply, *verify the call's credential* the cache and check rows), and "
        "each timer adds about 0.1 µs. Against the in-process figures (section 1 and the table "
        "above) the same code costs several times more here, where gRPC core, asyncio and the other "
        "calls keep the CPU caches busy, than in a tight loop.",
        "",
        f"| piece | {' | '.join(f'{name} µs per call' for name in names)} |",
        f"|---|{'---:|' * len(names)}",
    ]
    for label, _, _ in timed_service.PIECES:
        lines.append(f"| {label} | {' | '.join(_fmt(runs[n].us_per_call[label], 1) for n in names)} |")
    lines.append(
        "| whole call: service CPU per request (all threads) | "
        f"{' | '.join(_fmt(runs[n].load.server_cpu_us, 0) for n in names)} |"
    )
    lines.append(f"| calls timed | {' | '.join(f'{runs[n].calls:,}' for n in names)} |")
    return lines


def _grpc(results: BenchResults) -> list[str]:
    if not results.grpc:
        return [f"Not run: {results.skipped.get('grpc', 'not selected')}."]
    options = results.options
    lines = [
        f"Service alone (`python -m service`), {options.h2_connections} connections x {options.h2_streams} "
        "streams, unary calls with an empty request message. *h2load* (nghttp2) repeats one request, so it "
        "runs Health and SecureRoute with one reused token (warm); *h2grpc* (`bench/loadgen/h2grpc.js`, "
        "Node's http2, the same frames and headers) sends a fresh token on every call (cold), and runs "
        "Health with the same fresh tokens, so the cold ratio compares like with like. The two *@ half "
        "load* runs are one window: two h2load at once, Health and SecureRoute at a quarter of Health's "
        "saturating rate each, so a stall of the shared machine delays both alike and their p99 "
        "difference is what authentication adds. Server CPU is the "
        "service process's CPU time per request (both its threads), the steadiest figure on a shared "
        "machine.",
        "",
        *_load_table(results.grpc, grpc_load.SCENARIOS),
        "",
        *_ratio_rows(
            results.grpc,
            (
                ("SecureRoute warm / Health (h2load)", "h2load SecureRoute warm", "h2load Health"),
                ("SecureRoute cold / Health (h2grpc)", "h2grpc SecureRoute cold", "h2grpc Health"),
                ("SecureRoute warm / Health (h2grpc)", "h2grpc SecureRoute warm", "h2grpc Health"),
                ("SecureRoute cold / warm (h2grpc)", "h2grpc SecureRoute cold", "h2grpc SecureRoute warm"),
            ),
        ),
        *_pieces(results),
        *_inside(results),
    ]
    return lines


def _unix_lever(rounds: Sequence[dict[str, LoadResult]]) -> list[str]:
    """The facade over the service's Unix socket against the facade over TCP, scenario by scenario."""
    unix = http_load.UNIX_FACADE
    if not any(name in r for r in rounds for name in http_load.UNIX_SCENARIOS):
        return []
    lines = [
        "",
        "**Lever: a Unix socket between facade and service.** A second facade (`--backend unix:PATH`) "
        "reaches the same service over its `--listen-unix` socket instead of loopback TCP; wrk, tokens and "
        "load are the same. In each round every system runs its scenarios back to back, and the two "
        "facades take turns going first (TCP in odd rounds) so neither profits from its place; the "
        "Unix-socket facade takes the round's cold tokens from the far end of the same pool, so neither "
        "cold run sends a token the service has already verified. CPU is facade + service, as above. "
        "Ratios are Unix / TCP, medians of per-round ratios; above 1 the socket pays (by CPU: fewer µs per "
        "request).",
        "",
        "| scenario | req/s, TCP | req/s, Unix socket | Unix / TCP, by req/s | CPU µs/req, TCP "
        "| CPU µs/req, Unix socket | Unix / TCP, by server CPU per request | failed calls, Unix socket "
        "| note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for what in http_load.WHATS:
        tcp_name, unix_name = f"facade {what}", f"{unix} {what}"
        tcp_runs = [r[tcp_name] for r in rounds if tcp_name in r]
        unix_runs = [r[unix_name] for r in rounds if unix_name in r]
        if not unix_runs:
            continue
        notes = {r.note for r in unix_runs if r.note}
        if any(r.tokens_exhausted for r in unix_runs):
            notes.add("token pool ran out: req/s is a lower bound")
        lines.append(
            f"| {what} | {_fmt(median_of(r.rps for r in tcp_runs), 0)} "
            f"| {_fmt(median_of(r.rps for r in unix_runs), 0)} "
            f"| {_fmt(_per_round_ratio(rounds, unix_name, tcp_name, _rps), 2, 'x')} "
            f"| {_fmt(median_of(r.server_cpu_us for r in tcp_runs), 0)} "
            f"| {_fmt(median_of(r.server_cpu_us for r in unix_runs), 0)} "
            f"| {_fmt(_per_round_ratio(rounds, unix_name, tcp_name, _cpu_capacity), 2, 'x')} "
            f"| {sum(r.errors for r in unix_runs)} | {'; '.join(sorted(notes))} |"
        )
    return lines


def _http(results: BenchResults) -> list[str]:
    if not results.http:
        return [f"Not run: {results.skipped.get('http', 'not selected')}."]
    pairs = []
    for system in ("facade", "express"):
        pairs += [
            (f"{system}: /secure-route warm / /health", f"{system} /secure-route warm", f"{system} /health"),
            (f"{system}: /secure-route cold / /health", f"{system} /secure-route cold", f"{system} /health"),
        ]
    for what in ("/health", "/secure-route warm", "/secure-route cold"):
        pairs.append((f"facade / Express, {what}", f"facade {what}", f"express {what}"))
    lines = [
        f"wrk, one thread, {results.options.http_connections} connections, the same Lua script for every run "
        "(`bench/loadgen/tokens.lua`): warm reuses one token, cold takes each token of a fresh file once, "
        "/health carries the same fresh tokens as cold. The facade's CPU figure adds the service's (each "
        "facade request is one gRPC call to it). *express* is the original system "
        "(`bench/peers/express`: Express 5, express-jwt 8 on jsonwebtoken 9, jwks-rsa 4 with its cache), "
        "same issuer, same tokens, same load.",
        "",
        *_load_table(results.http, http_load.SCENARIOS),
        "",
        *_ratio_rows(results.http, pairs),
        *_unix_lever(results.http),
    ]
    if results.grpc:
        lines += ["", "Our gRPC server (no facade) against Express, same token, per round:", ""]
        merged = [{**g, **h} for g, h in zip(results.grpc, results.http, strict=False)]
        lines += _ratio_rows(
            merged,
            (
                ("gRPC SecureRoute warm (h2load) / Express /secure-route warm", "h2load SecureRoute warm",
                 "express /secure-route warm"),
                ("gRPC SecureRoute cold (h2grpc) / Express /secure-route cold", "h2grpc SecureRoute cold",
                 "express /secure-route cold"),
                ("gRPC Health (h2load) / Express /health", "h2load Health", "express /health"),
            ),
        )  # fmt: skip
    return lines


def _valid_p99(run: StormRound, name: str) -> float:
    """The valid stream's p99 alone (``name`` "alone") or during the burst ``name`` of ``BURSTS``."""
    if name == "alone":
        return run.baseline_p99_us
    return run.burst(name).valid_p99_us


def _storm_ratio(rounds: Sequence[StormRound], top: str, bottom: str) -> float | None:
    """Median over rounds of the valid stream's p99 during ``top`` / during ``bottom``."""
    return median_of(ratio_of(_valid_p99(r, top), _valid_p99(r, bottom)) for r in rounds)


#: The valid stream's conditions, lightest first, as the storm tables show them.
_CONDITIONS = ("alone", "rejection control", "valid control", "storm")


def _storm(results: BenchResults) -> list[str]:
    if not results.storm:
        return [f"Not run: {results.skipped.get('storm', 'not selected')}."]
    storm = results.storm
    count = f"{results.options.storm_requests:,}"
    lines = [
        "Each round: a light stream of valid SecureRoute calls (h2load, 2 connections x 2 streams, one "
        f"token) runs alone, then three more times, each with a burst of {count} concurrent calls fired "
        "into its middle by the same Python client (`bench.grpc_client`, 4 channels, every call at once):",
        "",
        "- *storm*: each call names a random unknown kid (distinct ES256 tokens);",
        "- *rejection control*: distinct ES256 tokens of the same shape, signed by the known key, from an "
        "issuer the service does not trust: the same parse and the same UNAUTHENTICATED answer as the "
        "storm's calls, and no key-set work (no key lookup, negative cache, cooldown or refresh), so the "
        "storm differs from it by two header checks and the unknown-kid handling alone;",
        "- *valid control*: one valid ES256 token of the known key, repeated: a token-cache hit and an OK "
        "answer per call, the everyday burst. (Not distinct valid tokens: each would add a signature "
        "check, making the control heavier than the storm.)",
        "",
        "The three bursts' order rotates by one each round, after one unmeasured warm-up burst (half "
        "valid, half foreign-issuer calls; no unknown kid, so a key-set refresh still falls to a measured "
        "storm). A burst's percentiles are over the valid calls that started while it was in flight. "
        "Fetches are read from the issuer's counters around the storm's run.",
        "",
        "| round | order | issuer fetches in the storm (discovery + JWKS) | valid p50 ms alone → rejection "
        "control → valid control → storm | valid p99 ms, same order | p99 storm / alone "
        "| p99 storm / rejection control | p99 storm / valid control |",
        "|---:|---|---:|---|---|---:|---:|---:|",
    ]
    for index, s in enumerate(storm, 1):
        p50s = [s.baseline_p50_us] + [s.burst(name).valid_p50_us for name in _CONDITIONS[1:]]
        p99s = [_valid_p99(s, name) for name in _CONDITIONS]
        ratios = [ratio_of(s.storm.valid_p99_us, _valid_p99(s, name)) for name in _CONDITIONS[:3]]
        lines.append(
            f"| {index} | {' → '.join(s.order)} | {s.discovery_fetches} + {s.jwks_fetches} "
            f"| {' → '.join(_ms(v) for v in p50s)} | {' → '.join(_ms(v) for v in p99s)} "
            f"| {' | '.join(_fmt(r, 2, 'x') for r in ratios)} |"
        )
    lines += [
        "",
        "| round | burst | burst answers | burst took ms | valid calls in window "
        "| valid calls, HTTP errors |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for index, s in enumerate(storm, 1):
        for name in _CONDITIONS[1:]:
            run = s.burst(name)
            codes = ", ".join(f"{k} {v}" for k, v in sorted(run.codes.items()))
            lines.append(
                f"| {index} | {name} | {codes} | {run.seconds * 1000:,.0f} | {run.valid_in_window} "
                f"| {run.valid_errors} |"
            )
    p99 = {name: median_of(_valid_p99(s, name) for s in storm) for name in _CONDITIONS}
    took = {name: median_of(s.burst(name).seconds * 1000 for s in storm) for name in _CONDITIONS[1:]}
    windows = [s.burst(name).valid_in_window for s in storm for name in _CONDITIONS[1:]]
    # Nearest rank: the p99 of n calls is the k-th slowest of them, k = n - ceil(0.99 n) + 1.
    slowest = max(n - math.ceil(0.99 * n) + 1 for n in windows)
    few_calls = (
        f"With {min(windows)} to {max(windows)} valid calls in a window, its p99 is "
        + ("its slowest call" if slowest == 1 else f"one of its {slowest} slowest calls")
        + ", so single rounds move a lot: read the medians. "
    )
    lines += [
        "",
        "Medians over the rounds: valid p99 "
        + " → ".join(f"{_ms(p99[name])} ms {name}" for name in _CONDITIONS)
        + f"; p99 storm / alone {_fmt(_storm_ratio(storm, 'storm', 'alone'), 2, 'x')} (the issue's target), "
        f"storm / rejection control {_fmt(_storm_ratio(storm, 'storm', 'rejection control'), 2, 'x')}, "
        f"storm / valid control {_fmt(_storm_ratio(storm, 'storm', 'valid control'), 2, 'x')}, "
        f"rejection control / alone {_fmt(_storm_ratio(storm, 'rejection control', 'alone'), 2, 'x')}. "
        f"The bursts took {_fmt(took['storm'], 0)} ms (storm), {_fmt(took['rejection control'], 0)} ms "
        f"(rejection control) and {_fmt(took['valid control'], 0)} ms (valid control).",
        "",
        f"How to read them. The valid calls' p99 during any burst is about the burst's own length: {count} "
        "calls arriving at once queue on the service's one event loop (each is a full gRPC call, whatever "
        "its token), and the Python client sending them shares the same two cores; *rejection control / "
        "alone* is what that load alone does. *Storm / rejection control* compares two bursts that "
        "differ only in the kid handling: near 1 (within the spread between rounds) means unknown kids "
        "(a fetch stampede, a lock around the key-set refresh) hold valid calls up no longer than the "
        "same number of cheap rejections do; well above 1 would point at the kid path. *Storm / valid "
        "control* is the everyday comparison, with as many valid calls (cache hits); it also carries the "
        "difference between the two answer paths (an abort with trailers against a handler and a reply). "
        f"{few_calls}A storm may refresh the key set once (single flight: every concurrent unknown kid "
        "waits on the same fetch, valid calls do not), unless the last refresh, the service's start-up "
        "load included, is less than the 30 s cooldown old: then it fetches nothing, like a storm naming "
        "kids already in the negative cache.",
    ]
    return lines


def _memory(results: BenchResults) -> list[str]:
    memory = results.memory
    if memory is None:
        return [f"Not run: {results.skipped.get('memory', 'not selected')}."]
    lines = [
        f"wrk drives the facade (and through it the service) with {2 * memory.step_requests:,} requests, "
        "each with its own ES256 token; VmRSS from `/proc/PID/status` before, after the first "
        f"{memory.step_requests:,} and after all of them.",
        "",
        f"| process | RSS before MiB | after {memory.step_requests:,} MiB "
        f"| after {2 * memory.step_requests:,} "
        "MiB | growth between the two |",
        "|---|---:|---:|---:|---:|",
    ]
    for process, (before, first, second) in memory.rss_kib.items():
        lines.append(
            f"| {process} | {before / 1024:.1f} | {first / 1024:.1f} | {second / 1024:.1f} "
            f"| {memory.growth(process) * 100:+.1f} % |"
        )
    lines += [
        "",
        f"Requests sent: {memory.requests_sent[0]:,} + {memory.requests_sent[1]:,} at about "
        f"{memory.rps[0]:,.0f} and {memory.rps[1]:,.0f} req/s; "
        f"failed: {memory.errors[0]} + {memory.errors[1]}.",
    ]
    return lines


def _workers(results: BenchResults) -> list[str]:
    if "workers" in results.skipped:
        return [f"Not run: {results.skipped['workers']}."]
    lines = []
    for process in ("service", "facade"):
        if not results.workers_available.get(process):
            lines.append(f"- {process}: not available (no `--workers` flag).")
            continue
        figures = results.workers.get(process, {})
        one, two = figures.get(1), figures.get(2)
        if one is None or two is None:
            lines.append(f"- {process}: `--workers` exists but was not measured (a tool is missing).")
            continue
        lines.append(
            f"- {process}: SecureRoute warm, 1 worker {one.rps:,.0f} req/s, 2 workers {two.rps:,.0f} req/s "
            f"({_fmt(ratio_of(two.rps, one.rps), 2, 'x')})."
        )
    return lines


def _cpu_delta(rounds: Sequence[dict[str, LoadResult]], top: str, bottom: str) -> float | None:
    """Median over rounds of the extra server CPU per request of ``top`` over ``bottom``, µs."""

    def delta(run: dict[str, LoadResult]) -> float | None:
        a, b = run.get(top), run.get(bottom)
        if a is None or b is None or a.server_cpu_us is None or b.server_cpu_us is None:
            return None
        return a.server_cpu_us - b.server_cpu_us

    return median_of(delta(r) for r in rounds)


def _signature_bound(results: BenchResults) -> str:
    """A sentence: the cold ratio (by CPU) if the signature check were all a new token added to a
    Health call; empty without the in-server breakdown."""
    if "cold" not in results.inside:
        return ""
    health = median_of(r["h2grpc Health"].server_cpu_us for r in results.grpc if "h2grpc Health" in r)
    signature = results.inside["cold"].us_per_call.get(timed_service.SIGNATURE)
    if not health or signature is None:
        return ""
    return (
        f" Were the signature check ({_fmt(signature, 1)} µs in the server) the only extra work, cold / "
        f"Health by CPU would be {_fmt(health / (health + signature), 2, 'x')} (h2grpc Health, "
        f"{_fmt(health, 0)} µs): the ≥ 0.85x goal leaves RS256 almost nothing for the rest."
    )


def _reading(results: BenchResults) -> list[str]:
    """Where the time goes, from this run's own figures."""
    lines = []
    rs256 = results.validation.get("RS256")
    if rs256:
        overhead = median_of(c - r for c, r in zip(rs256["cold"], rs256["raw"], strict=True))
        lines.append(
            f"- Cold validation costs the raw signature check plus about {_fmt(overhead, 0)} µs of Python "
            "per "
            "token (RS256): strict base64url and strict JSON of the payload, the claim checks, the "
            "principal and the cache insert. An RSA-2048 verify is cheap (about 20 µs), so that fixed cost "
            "weighs more against RS256/PS256 than against ES256/EdDSA, whose verify costs 3 to 5 times more."
        )
    if results.grpc:
        health = median_of(r["h2load Health"].server_cpu_us for r in results.grpc if "h2load Health" in r)
        warm = _cpu_delta(results.grpc, "h2load SecureRoute warm", "h2load Health")
        cold = _cpu_delta(results.grpc, "h2grpc SecureRoute cold", "h2grpc Health")
        pieces = {name: median_of(values) for name, values in results.pieces.items()}
        handler = pieces.get("SecureRoute handler + reply serialisation")
        uncached = pieces.get(
            "SecureRoute handler + reply serialisation, reply built on every call (no reply cache)"
        )
        guard = pieces.get("interceptor, protected method, cached token (SecureRoute)")
        premium = "inside the busy server each costs two to three times that"
        if {"warm", "cold"} <= results.inside.keys():
            warm_in, cold_in = results.inside["warm"].us_per_call, results.inside["cold"].us_per_call
            premium = (
                "timed inside the running service (section 2's breakdown) authentication took "
                f"{_fmt(warm_in[timed_service.AUTHENTICATE], 1)} µs on a cached token and "
                f"{_fmt(cold_in[timed_service.AUTHENTICATE], 1)} µs on a new one, the signature check "
                f"{_fmt(cold_in[timed_service.SIGNATURE], 1)} µs of that"
            )
        lines.append(
            f"- gRPC: a Health call costs the service about {_fmt(health, 0)} µs of CPU, nearly all of it "
            "grpc.aio's own per-call work (C-core, the Cython layer, the hand-offs between its poller "
            f"thread and the asyncio loop). SecureRoute warm adds {_fmt(warm, 0)} µs (median of the "
            "per-round differences). In-process, the Python that differs is the SecureRoute handler "
            f"({_fmt(handler, 1)} µs: its reply is built once per verified token, "
            f"`service/handlers.py` ReplyCache; {_fmt(uncached, 1)} µs when built on every call, the "
            "claims `Struct` being most of it) and jwt_authn's interceptor "
            f"({_fmt(guard, 1)} µs on a cached token); "
            f"{premium}. Cold adds {_fmt(cold, 0)} µs: a full verification (section 1) at the same "
            "in-server premium, so the cold ratio is bounded by the signature check and Python's parse "
            f"of the token.{_signature_bound(results)}"
        )
    if results.http:
        merged = _with_http(results)
        facade_ceiling, grpc_ceiling = _ceiling(merged, 0), _ceiling(merged, 2)  # both against warm
        lines.append(
            "- HTTP: each facade request is an aiohttp request plus a gRPC call to the service, two Python "
            "processes on a 2-core machine that also runs the load generator. The facade's /health, "
            f"which authenticates nothing, served {_fmt(facade_ceiling, 2, 'x')} the requests/s of "
            f"Express's authenticated warm route, and our gRPC Health {_fmt(grpc_ceiling, 2, 'x')} (the "
            "targets' ceilings): where those are below a goal, the HTTP-to-gRPC hop and grpc.aio's "
            "per-call cost, not authentication, keep it out of reach. Express verifies every token "
            "(jsonwebtoken keeps no verified-token cache), so its warm and cold runs cost the same, "
            "while ours differ by a signature check."
        )
    return lines


def _raw_rounds(results: BenchResults) -> list[str]:
    lines = ["<details><summary>Every round's figures</summary>", ""]
    for title, rounds in (("gRPC", results.grpc), ("HTTP", results.http)):
        for index, runs in enumerate(rounds, 1):
            lines.append(f"{title} round {index}:")
            lines.append("")
            for name, r in runs.items():
                lines.append(
                    f"- {name}: {r.rps:,.0f} req/s, p50 {_ms(r.p50_us)} ms, p99 {_ms(r.p99_us)} ms, "
                    f"CPU {_fmt(r.server_cpu_us, 0)} µs/req, {r.requests:,} requests, {r.errors} failed"
                )
            lines.append("")
    for alg, row in results.validation.items():
        values = "; ".join(f"{m} " + ", ".join(f"{v:.2f}" for v in vs) for m, vs in row.items())
        lines.append(f"- validation {alg} (µs per round): {values}")
    lines += ["", "</details>"]
    return lines


def render(results: BenchResults) -> str:
    rows = targets(results)
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench`); do not edit by hand. Every figure is measured next "
        "to its reference in the same run, and ratios are medians of per-round ratios, because the machine "
        "is shared and absolute numbers move with whatever else runs on it.",
        "",
        "## Targets",
        "",
        "| target | measured | goal | result |",
        "|---|---:|---|---|",
        *(f"| {t.name} | {t.shown} | {t.goal} | {_verdict(t)} |" for t in rows),
        "",
        "## Machine",
        "",
        *_machine(results),
        "",
        "## 1. Token validation per core",
        "",
        *_validation(results),
        "",
        "## 2. gRPC: SecureRoute warm and cold against Health",
        "",
        *_grpc(results),
        "",
        "## 3 and 4. HTTP: our facade and the original Express system",
        "",
        *_http(results),
        "",
        "## 5. JWKS storm",
        "",
        *_storm(results),
        "",
        "## 6. Resident memory under distinct tokens",
        "",
        *_memory(results),
        "",
        "## 7. Workers",
        "",
        *_workers(results),
        "",
    ]
    reading = _reading(results)
    if reading:
        lines += ["## Where the time goes", "", *reading, ""]
    if results.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in results.notes), ""]
    lines += _raw_rounds(results)
    return "\n".join(lines) + "\n"
