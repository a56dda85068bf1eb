"""Render a run's results as ``docs/benchmarks.md``: targets with pass/miss, then each section.

The figures and tables are computed here; the prose around them (how each section was measured
and how to read it) lives in ``report_template.md`` next to this module, one block per piece of
text, its ``$placeholders`` filled with ``string.Template``.

Ratios are computed per round from runs made back to back, then the median is taken, so load from
other processes on a shared machine hits both sides of a ratio alike. A load target is one row of
``LOAD_TARGETS`` (two scenario names and a goal), the one program's against Express among them.

Usage:
    text = render(results)
    for target in targets(results): print(target.name, target.shown)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

from bench import grpc_section, http_section, variants
from bench.context import BenchResults, Round
from bench.measure import LoadResult, median_of, ratio_of
from bench.pieces import PIECES
from bench.storm import BURSTS, StormRound
from bench.validation import ALGORITHMS

__all__ = ["LOAD_TARGETS", "Target", "render", "targets"]


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    value: float | None
    goal: str
    passed: bool | None
    shown: str
    #: A figure that explains another, with no goal behind it: no pass or miss.
    informative: bool = False


#: The page's prose: block name -> its text, with $placeholders for the run's figures.
_TEMPLATE = Path(__file__).with_name("report_template.md")


def _read_blocks(path: Path) -> dict[str, Template]:
    """Each ``<!-- block: NAME -->`` of ``path`` up to the next marker (what precedes the first is
    the file's own comment), its blank lines at either end dropped."""
    parts = re.split(r"^<!-- block: (\w+) -->\n", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {name: Template(text.strip("\n")) for name, text in zip(parts[1::2], parts[2::2], strict=True)}


_BLOCKS = _read_blocks(_TEMPLATE)


def _prose(block: str, **figures: object) -> list[str]:
    """The lines of the template's ``block``, every placeholder filled (a missing one raises)."""
    return _BLOCKS[block].substitute({name: str(value) for name, value in figures.items()}).split("\n")


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.{digits}f}{suffix}"


def _ms(value_us: float | None) -> str:
    return _fmt(None if value_us is None else value_us / 1000)


def _rps(result: LoadResult) -> float | None:
    return result.rps


def _cpu_capacity(result: LoadResult) -> float | None:
    """Requests per CPU-second: the inverse of CPU per request (so ratios read like rps ratios)."""
    return 1e6 / result.server_cpu_us if result.server_cpu_us else None


def _ratio(
    rounds: Sequence[Round], top: str, bottom: str, field: Callable[[LoadResult], float | None] = _rps
) -> float | None:
    """The median over rounds of ``top`` / ``bottom``, each round's pair measured back to back."""
    return median_of(
        ratio_of(field(r[top]), field(r[bottom])) if top in r and bottom in r else None for r in rounds
    )


_SPLIT = "none: the split deployment, measured as information"
_CEILING = "the row above's reach whatever authentication costs"
_BARE = "none: the ceiling, a bare handler on our loop in the same run (bench/peers/bare.py)"
_BARE_HTTP = http_section.BARE
_EXPRESS_WARM, _EXPRESS_COLD = "express /secure-route warm", "express /secure-route cold"
_ONE = http_section.ONE_PROGRAM
# fmt: off
#: (target, our scenario, the reference scenario, goal: a float is "≥ goal", a text is information).
LOAD_TARGETS: tuple[tuple[str, str, str, float | str], ...] = (
    ("gRPC guard on / off, SecureRoute reused token, req/s (h2load)",
     "service SecureRoute warm", "guard-off SecureRoute warm", 0.95),
    ("gRPC guard on / off, SecureRoute fresh tokens on both sides, req/s (h2grpc)",
     "service SecureRoute cold", "guard-off SecureRoute cold", 0.85),
    ("gRPC tracing on / off, SecureRoute reused token, req/s (h2load)",
     "traced SecureRoute warm", "service SecureRoute warm",
     "none: what traces cost when on; off adds nothing (section 2)"),
    ("gRPC SecureRoute / Python peer (grpc.aio + PyJWT), reused token, req/s (h2load)",
     "service SecureRoute warm", "pyjwt SecureRoute warm", 2.5),
    ("gRPC SecureRoute / Python peer, fresh tokens, req/s (h2grpc)",
     "service SecureRoute cold", "pyjwt SecureRoute cold", 2.0),
    ("gRPC Health / Python peer's Health, req/s (h2load)", "service Health", "pyjwt Health", 1.0),
    ("ceiling: bare grpc.aio Health (no interceptor) / Python peer's Health, req/s (h2load)",
     "bare Health", "pyjwt Health", _BARE),
    ("ceiling: bare grpc.aio SecureRoute (no authentication) / Python peer, reused token, req/s (h2load)",
     "bare SecureRoute warm", "pyjwt SecureRoute warm", _BARE),
    ("gRPC SecureRoute warm (h2load) / Express /secure-route warm, req/s",
     "service SecureRoute warm", _EXPRESS_WARM, 2.0),
    ("ceiling of the row above: gRPC Health (no authentication) / Express /secure-route warm, req/s",
     "service Health", _EXPRESS_WARM, _CEILING),
    ("HTTP guard on / off (one program), /secure-route reused token, req/s (wrk)",
     f"{_ONE} /secure-route warm", f"{http_section.GUARD_OFF} /secure-route warm", 0.95),
    ("HTTP guard on / off (one program), /secure-route fresh tokens on both sides, req/s (wrk)",
     f"{_ONE} /secure-route cold", f"{http_section.GUARD_OFF} /secure-route cold", 0.85),
    ("one program /secure-route warm / Express /secure-route warm, req/s",
     f"{_ONE} /secure-route warm", _EXPRESS_WARM, 3.0),
    ("ceiling: bare aiohttp /secure-route (no authentication) / Express /secure-route warm, req/s",
     f"{_BARE_HTTP} /secure-route warm", _EXPRESS_WARM, _BARE),
    ("one program /secure-route cold / Express /secure-route cold, req/s",
     f"{_ONE} /secure-route cold", _EXPRESS_COLD, 1.8),
    ("one program /health / Express /health, req/s", f"{_ONE} /health", "express /health", 2.0),
    ("ceiling: bare aiohttp /health / Express /health, req/s",
     f"{_BARE_HTTP} /health", "express /health", _BARE),
    ("split facade /secure-route warm / Express /secure-route warm, req/s",
     "facade /secure-route warm", _EXPRESS_WARM, _SPLIT),
    ("ceiling of the row above: facade /health (no authentication) / Express /secure-route warm, req/s",
     "facade /health", _EXPRESS_WARM, _CEILING),
    ("split facade /secure-route cold / Express /secure-route cold, req/s",
     "facade /secure-route cold", _EXPRESS_COLD, _SPLIT),
    ("ceiling of the row above: facade /health (no authentication) / Express /secure-route cold, req/s",
     "facade /health", _EXPRESS_COLD, _CEILING),
    ("lever: facade over a Unix socket / over TCP, /secure-route warm, req/s",
     f"{http_section.UNIX_FACADE} /secure-route warm", "facade /secure-route warm",
     "> 1 if the lever pays (section 3 and 4)"),
)


def _target(name: str, value: float | None, goal: float, unit: str, *, at_most: bool,
            shown: str = "") -> Target:
    passed = None if value is None else (value <= goal if at_most else value >= goal)
    return Target(name, value, f"{'≤' if at_most else '≥'} {goal:g}{unit}", passed,
                  shown or _fmt(value, 1 if unit == " %" else 2, unit))


def _storm_ratio(rounds: Sequence[StormRound], top: str, bottom: str) -> float | None:
    return median_of(ratio_of(r.p99(top), r.p99(bottom)) for r in rounds)


def targets(results: BenchResults) -> list[Target]:
    """Every target, measured (value None: not measured in this run)."""
    rows = []
    for alg, goal in (("RS256", 2.5), ("ES256", 1.5)):
        row = results.validation.get(alg)
        pairs = zip(row["cold"], row["raw"], strict=True) if row else ()
        value = median_of(ratio_of(cold, raw) for cold, raw in pairs)
        rows.append(_target(f"{alg} cold validation / raw cryptography verify", value, goal, "x",
                            at_most=True))
    # The cache hit is one code path whatever the algorithm: the spread between algorithms is noise.
    per_alg = [v for v in (median_of(row["warm"]) for row in results.validation.values()) if v]
    warm = median_of(per_alg)
    spread = f" ({_fmt(min(per_alg))} to {_fmt(max(per_alg))})" if per_alg else ""
    rows.append(_target("warm validation (cache hit), median over the algorithms", warm, 2.0, " µs",
                        at_most=True, shown=_fmt(warm, 2, " µs") + spread))
    merged = results.rounds()
    for name, top, bottom, aim in LOAD_TARGETS:
        value = _ratio(merged, top, bottom)
        informative = Target(name, value, str(aim), None, _fmt(value, 2, "x"), informative=True)
        rows.append(informative if isinstance(aim, str) else _target(name, value, aim, "x", at_most=False))
    health, secure = grpc_section.HALF_LOAD
    added = [(r[secure].p99_us - r[health].p99_us) / 1e3 for r in results.grpc if {secure, health} <= set(r)]
    added = [v for v in added if not math.isnan(v)]
    shown = _fmt(median_of(added), 2, " ms")
    if len(added) > 1:  # the spread says whether the median is a measurement or the machine's noise
        shown += f" (rounds {min(added):+.2f} to {max(added):+.2f})"
    rows.append(_target("p99 latency added by authentication at half the saturating load (gRPC, reused "
                        "token; "
                        "SecureRoute and Health in one window)", median_of(added), 1.0, " ms", at_most=True,
                        shown=shown))
    for process in ("service", "facade"):
        growth = results.memory.growth(process) * 100 if results.memory else None
        rows.append(_target(f"{process} RSS growth from one step of distinct tokens to two (section 6)",
                            growth, 10.0, " %", at_most=True))
    worst = max((s.discovery_fetches + s.jwks_fetches for s in results.storm), default=None)
    rows.append(Target("issuer fetches per storm of unknown kids (worst round; section 5)", worst,
                       "≤ 2 (one refresh: discovery + JWKS)", None if worst is None else worst <= 2,
                       "n/a" if worst is None else str(worst)))
    ratio = _storm_ratio(results.storm, "storm", "rejection control") if results.storm else None
    rows.append(_target("valid calls' p99 during the unknown-kid storm / during a same-size burst of cheap "
                        "rejections (section 5)", ratio, 1.2, "x", at_most=True))
    return rows


_GRPC_RATIOS = (
    ("guard on / off, SecureRoute reused token (h2load)",
     "service SecureRoute warm", "guard-off SecureRoute warm"),
    ("guard on / off, SecureRoute fresh tokens (h2grpc)",
     "service SecureRoute cold", "guard-off SecureRoute cold"),
    ("tracing on / off, SecureRoute reused token (h2load)",
     "traced SecureRoute warm", "service SecureRoute warm"),
    ("ours / Python peer, Health (h2load)", "service Health", "pyjwt Health"),
    ("ours / Python peer, SecureRoute reused token (h2load)",
     "service SecureRoute warm", "pyjwt SecureRoute warm"),
    ("ours / Python peer, SecureRoute fresh tokens (h2grpc)",
     "service SecureRoute cold", "pyjwt SecureRoute cold"),
    ("SecureRoute cold / warm (h2grpc)", "service SecureRoute cold", "service SecureRoute warm (h2grpc)"),
)
_GRPC_VS_EXPRESS = (
    ("gRPC SecureRoute warm (h2load) / Express /secure-route warm",
     "service SecureRoute warm", _EXPRESS_WARM),
    ("gRPC SecureRoute cold (h2grpc) / Express /secure-route cold",
     "service SecureRoute cold", _EXPRESS_COLD),
    ("gRPC Health (h2load) / Express /health", "service Health", "express /health"),
)
# fmt: on


def _verdict(target: Target) -> str:
    if target.informative:
        return "informative" if target.value is not None else "not measured"
    return {True: "pass", False: "**miss**", None: "not measured"}[target.passed]


def _not_run(results: BenchResults, section: str) -> list[str]:
    return _prose("not_run", reason=results.skipped.get(section, "not selected"))


def _machine(results: BenchResults) -> list[str]:
    facts, options = results.facts, results.options
    rows = [
        ("date", facts.date),
        ("CPUs (nproc)", facts.cpus),
        ("CPU model", facts.cpu_model),
        ("kernel", facts.kernel),
        ("Python", facts.python),
        *facts.versions.items(),
        ("load average at start", f"{facts.load_average} (the machine is shared: hence ratios)"),
        ("rounds", f"{options.rounds} (figures are medians over rounds)"),
        ("each load run", f"{options.warmup_s:g} s warm-up + {options.load_duration_s:g} s measured"),
        ("service/facade log level", options.log_level),
        ("whole run", f"{results.elapsed_s / 60:.1f} min"),
    ]
    return ["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]


def _validation(results: BenchResults) -> list[str]:
    if not results.validation:
        return _not_run(results, "validation")
    lines = [
        *_prose("validation", tokens=f"{results.options.validation_tokens:,}"),
        "",
        "| alg | raw µs | cold µs | cold / raw | cold tokens/s/core | warm µs | warm authenticate µs "
        "| jwcrypto JWT µs | jwcrypto / raw |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for alg in ALGORITHMS:
        if not (row := results.validation.get(alg)):
            continue
        med = {metric: median_of(values) for metric, values in row.items()}
        per_round = {
            m: median_of(ratio_of(a, b) for a, b in zip(row[m], row["raw"], strict=True))
            for m in ("cold", "jwcrypto")
        }
        lines.append(
            f"| {alg} | {_fmt(med['raw'], 1)} | {_fmt(med['cold'], 1)} | {_fmt(per_round['cold'], 2, 'x')} "
            f"| {_fmt(1e6 / med['cold'] if med['cold'] else None, 0)} | {_fmt(med['warm'])} "
            f"| {_fmt(med['warm_authenticate'])} | {_fmt(med['jwcrypto'], 1)} "
            f"| {_fmt(per_round['jwcrypto'], 2, 'x')} |"
        )
    return lines


def _load_table(rounds: Sequence[Round], scenarios: Sequence[str]) -> list[str]:
    lines = [
        "| scenario | req/s | p50 ms | p99 ms | server CPU µs/req | failed calls | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in scenarios:
        if not (runs := [r[name] for r in rounds if name in r]):
            continue
        notes = {r.note for r in runs if r.note}
        notes |= {"token pool ran out: req/s is a lower bound" for r in runs if r.tokens_exhausted}
        lines.append(
            f"| {name} | {_fmt(median_of(r.rps for r in runs), 0)} "
            f"| {_ms(median_of(r.p50_us for r in runs))} | {_ms(median_of(r.p99_us for r in runs))} "
            f"| {_fmt(median_of(r.server_cpu_us for r in runs), 0)} "
            f"| {sum(r.errors for r in runs)} | {'; '.join(sorted(notes))} |"
        )
    return lines


def _ratio_rows(rounds: Sequence[Round], pairs: Sequence[tuple[str, str, str]]) -> list[str]:
    lines = ["| ratio | by req/s | by server CPU per request |", "|---|---:|---:|"]
    for label, top, bottom in pairs:
        by_rps, by_cpu = _ratio(rounds, top, bottom), _ratio(rounds, top, bottom, _cpu_capacity)
        if by_rps is not None or by_cpu is not None:
            lines.append(f"| {label} | {_fmt(by_rps, 2, 'x')} | {_fmt(by_cpu, 2, 'x')} |")
    return lines


def _grpc(results: BenchResults) -> list[str]:
    if not results.grpc:
        return _not_run(results, "grpc")
    options = results.options
    lines = [
        *_prose("grpc", connections=options.h2_connections, streams=options.h2_streams),
        "",
        *_load_table(results.grpc, grpc_section.SCENARIOS),
        "",
        *_ratio_rows(results.grpc, _GRPC_RATIOS),
    ]
    if results.pieces:
        lines += [
            "",
            *_prose("grpc_pieces"),
            "",
            "| piece | µs per call |",
            "|---|---:|",
        ]
        lines += [f"| {name} | {_fmt(median_of(results.pieces.get(name, [])), 1)} |" for name in PIECES]
    if runs := results.inside:
        names = [name for name in ("warm", "cold") if name in runs]
        lines += [
            "",
            *_prose("grpc_inside"),
            "",
            f"| piece | {' | '.join(f'{name} µs per call' for name in names)} |",
            f"|---|{'---:|' * len(names)}",
            *(
                f"| {label} | {' | '.join(_fmt(runs[n].us_per_call[label], 1) for n in names)} |"
                for label, _, _ in variants.PIECES
            ),
            "| whole call: service CPU per request (all threads) | "
            f"{' | '.join(_fmt(runs[n].load.server_cpu_us, 0) for n in names)} |",
            f"| calls timed | {' | '.join(f'{runs[n].calls:,}' for n in names)} |",
        ]
    return lines


_NO_BARE_COLD = f"{_BARE_HTTP} /secure-route cold"


def _http(results: BenchResults) -> list[str]:
    if not results.http:
        return _not_run(results, "http")
    rounds, unix, one = results.http, http_section.UNIX_FACADE, http_section.ONE_PROGRAM
    systems = (one, http_section.GUARD_OFF, "facade", "express", _BARE_HTTP)
    pairs = [
        (f"{s}: /secure-route {t} / /health", f"{s} /secure-route {t}", f"{s} /health")
        for s in systems
        for t in ("warm", "cold")
    ]
    pairs += [
        (f"{s} / Express, {what}", f"{s} {what}", f"express {what}")
        for s in (one, "facade")
        for what in http_section.WHATS
    ]
    lines = [
        *_prose("http", connections=results.options.http_connections),
        "",
        *_load_table(
            rounds, [f"{s} {w}" for s in systems for w in http_section.WHATS if f"{s} {w}" != _NO_BARE_COLD]
        ),
        "",
        *_ratio_rows(rounds, pairs),
        "",
        *_prose("http_unix"),
        "",
        *_load_table(rounds, [f"{unix} {w}" for w in http_section.WHATS]),
        "",
        *_ratio_rows(
            rounds, [(f"Unix / TCP, {w}", f"{unix} {w}", f"facade {w}") for w in http_section.WHATS]
        ),
    ]
    if results.grpc:
        lines += ["", *_prose("http_grpc_vs_express"), ""]
        lines += _ratio_rows(results.rounds(), _GRPC_VS_EXPRESS)
    return lines


_CONDITIONS = ("alone", "rejection control", "valid control", "storm")


def _storm(results: BenchResults) -> list[str]:
    if not (storm := results.storm):
        return _not_run(results, "storm")
    count = f"{results.options.storm_requests:,}"
    lines = [
        *_prose("storm", count=count),
        "",
        "| round | order | issuer fetches in the storm (discovery + JWKS) | valid p50 ms alone → rejection "
        "control → valid control → storm | valid p99 ms, same order | p99 storm / alone "
        "| p99 storm / rejection control | p99 storm / valid control |",
        "|---:|---|---:|---|---|---:|---:|---:|",
    ]
    for index, s in enumerate(storm, 1):
        p50s = [s.alone_p50_us, *(s.bursts[name].valid_p50_us for name in _CONDITIONS[1:])]
        ratios = [ratio_of(s.p99("storm"), s.p99(name)) for name in _CONDITIONS[:3]]
        lines.append(
            f"| {index} | {' → '.join(s.order)} | {s.discovery_fetches} + {s.jwks_fetches} "
            f"| {' → '.join(_ms(v) for v in p50s)} | {' → '.join(_ms(s.p99(n)) for n in _CONDITIONS)} "
            f"| {' | '.join(_fmt(r, 2, 'x') for r in ratios)} |"
        )
    lines += [
        "",
        "| round | burst | burst answers | burst took ms | valid calls in window | valid calls, HTTP "
        "errors |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for index, s in enumerate(storm, 1):
        for name in BURSTS:
            run = s.bursts[name]
            codes = ", ".join(f"{k} {v}" for k, v in sorted(run.codes.items()))
            lines.append(
                f"| {index} | {name} | {codes} | {run.seconds * 1000:,.0f} | {run.valid_in_window} "
                f"| {run.valid_errors} |"
            )
    windows = [s.bursts[name].valid_in_window for s in storm for name in BURSTS]
    # Nearest rank: the p99 of n calls is the k-th slowest of them, k = n - ceil(0.99 n) + 1.
    slowest = max(n - math.ceil(0.99 * n) + 1 for n in windows)
    lines += [
        "",
        *_prose(
            "storm_medians",
            p99s=" → ".join(f"{_ms(median_of(s.p99(n) for s in storm))} ms {n}" for n in _CONDITIONS),
            storm_rejection=_fmt(_storm_ratio(storm, "storm", "rejection control"), 2, "x"),
            storm_alone=_fmt(_storm_ratio(storm, "storm", "alone"), 2, "x"),
            storm_valid=_fmt(_storm_ratio(storm, "storm", "valid control"), 2, "x"),
            rejection_alone=_fmt(_storm_ratio(storm, "rejection control", "alone"), 2, "x"),
        ),
        "",
        *_prose(
            "storm_reading",
            count=count,
            fewest=min(windows),
            most=max(windows),
            slowest="its slowest call" if slowest == 1 else f"one of its {slowest} slowest calls",
        ),
    ]
    return lines


def _memory(results: BenchResults) -> list[str]:
    if (memory := results.memory) is None:
        return _not_run(results, "memory")
    step = memory.step_requests
    lines = [
        *_prose("memory", requests=f"{2 * step:,}", step=f"{step:,}"),
        "",
        f"| process | RSS before MiB | after {step:,} MiB | after {2 * step:,} MiB "
        "| growth between the two |",
        "|---|---:|---:|---:|---:|",
    ]
    for process, (before, first, second) in memory.rss_kib.items():
        lines.append(
            f"| {process} | {before / 1024:.1f} | {first / 1024:.1f} | {second / 1024:.1f} "
            f"| {memory.growth(process) * 100:+.1f} % |"
        )
    sent, rps, errors = memory.requests_sent, memory.rps, memory.errors
    lines += [
        "",
        *_prose(
            "memory_sent",
            sent_first=f"{sent[0]:,}",
            sent_second=f"{sent[1]:,}",
            rps_first=f"{rps[0]:,.0f}",
            rps_second=f"{rps[1]:,.0f}",
            failed_first=errors[0],
            failed_second=errors[1],
        ),
    ]
    return lines


def _workers(results: BenchResults) -> list[str]:
    if not results.workers:
        return _not_run(results, "workers")
    return [
        line
        for process, runs in results.workers.items()
        for line in _prose(
            "workers",
            process=process,
            one_rps=f"{runs[1].rps:,.0f}",
            two_rps=f"{runs[2].rps:,.0f}",
            ratio=_fmt(ratio_of(runs[2].rps, runs[1].rps), 2, "x"),
        )
    ]


def _cpu(rounds: Sequence[Round], name: str) -> float | None:
    return median_of(r[name].server_cpu_us for r in rounds if name in r)


def _reading(results: BenchResults) -> list[str]:
    """Where the time goes, from this run's own figures."""
    lines = []
    if rs256 := results.validation.get("RS256"):
        overhead = median_of(c - r for c, r in zip(rs256["cold"], rs256["raw"], strict=True))
        lines += _prose("reading_validation", overhead=_fmt(overhead, 0))
    if grpc := results.grpc:
        on, off = _cpu(grpc, "service SecureRoute warm"), _cpu(grpc, "guard-off SecureRoute warm")
        cold_on, cold_off = _cpu(grpc, "service SecureRoute cold"), _cpu(grpc, "guard-off SecureRoute cold")
        ours, peer = _cpu(grpc, "service Health"), _cpu(grpc, "pyjwt Health")
        signature = (
            results.inside["cold"].us_per_call.get(variants.SIGNATURE) if "cold" in results.inside else None
        )
        lines += _prose(
            "reading_grpc",
            warm_on=_fmt(on, 0),
            warm_off=_fmt(off, 0),
            cold_on=_fmt(cold_on, 0),
            cold_off=_fmt(cold_off, 0),
            signature=_fmt(signature, 0),
            health=_fmt(ours, 0),
            peer_health=_fmt(peer, 0),
        )
    if results.http:
        lines += _prose("reading_http")
    return lines


def _raw_rounds(results: BenchResults) -> list[str]:
    lines = ["<details><summary>Every round's figures</summary>", ""]
    for title, rounds in (("gRPC", results.grpc), ("HTTP", results.http)):
        for index, runs in enumerate(rounds, 1):
            lines += [f"{title} round {index}:", ""]
            lines += [
                f"- {name}: {r.rps:,.0f} req/s, p50 {_ms(r.p50_us)} ms, p99 {_ms(r.p99_us)} ms, CPU "
                f"{_fmt(r.server_cpu_us, 0)} µs/req, {r.requests:,} requests, {r.errors} failed"
                for name, r in runs.items()
            ]
            lines.append("")
    for alg, row in results.validation.items():
        values = "; ".join(f"{m} " + ", ".join(f"{v:.2f}" for v in vs) for m, vs in row.items())
        lines.append(f"- validation {alg} (µs per round): {values}")
    return [*lines, "", "</details>"]


def render(results: BenchResults) -> str:
    smoke = [*_prose("smoke"), ""] if results.options.smoke else []
    sections = (
        ("1. Token validation per core", _validation),
        ("2. gRPC: the guard on and off, and the Python peer", _grpc),
        ("3 and 4. HTTP: the one program, the split facade and the original Express system", _http),
        ("5. JWKS storm", _storm),
        ("6. Resident memory under distinct tokens", _memory),
        ("7. Workers", _workers),
    )
    lines = [
        *_prose("intro"),
        "",
        *smoke,
        "## Targets",
        "",
        "| target | measured | goal | result |",
        "|---|---:|---|---|",
        *(f"| {t.name} | {t.shown} | {t.goal} | {_verdict(t)} |" for t in targets(results)),
        "",
        "## Machine",
        "",
        *_machine(results),
        "",
    ]
    for title, section in sections:
        lines += [f"## {title}", "", *section(results), ""]
    if reading := _reading(results):
        lines += ["## Where the time goes", "", *reading, ""]
    # Measured once, when each choice was made (not every run): the code keeps the reason, this page
    # keeps the figure, so no comment goes stale with the machine.
    lines += ["## Figures behind the guard's design choices", "", *_prose("design_figures"), ""]
    if results.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in results.notes), ""]
    return "\n".join([*lines, *_raw_rounds(results)]) + "\n"
