"""Resource-exhaustion attacks against the stack on loopback, one at a time, with legitimate
clients and the kubelet's probes measured meanwhile (issues 16 and 24; the write-up is in
docs/reliability.md).

It starts a loopback issuer (``jwt_authn.testing.LoopbackIssuer``) and the default deployment,
``python -m secureroute`` (gRPC + HTTP in one process), or with ``--deployment split``
``python -m service`` and ``python -m http_facade``: default limits, the admin listener on
loopback, logs as ``deploy/`` has them (JSON, INFO) written to a file. Each attack gets a fresh
stack, 3 s of warm-up, then runs for ``--seconds`` in a child process (so the attackers' CPU does
not slow the measuring loop):

- ``holders``: 1,000 anonymous gRPC calls held open: 500 health ``Watch`` streams and 500
  ``SecureRoute`` calls without a token that never send their message, over 10 connections;
  each one that ends is opened again about a second later;
- ``silent-unary``: one client on one connection from 127.0.0.2 opens 150 anonymous unary
  calls a second (health ``Check``) that never send their message (issue 24);
- ``bad-tokens``: 40 gRPC and 40 HTTP loops sending, as fast as answered, tokens signed with an
  unknown kid, badly signed, expired, or oversized (8.6 KiB, over the 8 KiB cap); the logs'
  growth is measured;
- ``slow-headers``: 1,000 HTTP connections sending a request head one byte a second; each one
  that is closed is opened again;
- ``oversized``: 200 connections sending the heads of issue 16 as fast as they are answered
  (126 fields of 16 KiB, and 20 ``Authorization`` values of 10,000 bytes);
- ``full-heads``: 1,000 connections each holding a head just under the budget (31 fields,
  15 KiB) without ending it: the worst case of the HTTP side's memory.

Meanwhile the main process runs the legitimate clients: ``SecureRoute`` over gRPC with a valid
token and ``GET /secure-route`` with one (a new connection each time); the kubelet's probes,
``GET /health`` and ``GET /ready`` on each admin listener (a new connection each time, a 2 s
timeout as in ``deploy/``); and, for comparison, the public probes of before (a grpc.health.v1
Check on a new connection, ``GET /health`` on the public port). It reports each one's success
rate and latency percentiles, each process's VmRSS (baseline, peak, 10 s after), and the bytes
and lines the programs logged during the attack.

Every attack is bounded in count and time and targets loopback only.

Usage:
    .venv/bin/python -m tools.attack                      # the one program, every attack, 20 s each
    .venv/bin/python -m tools.attack --deployment split --attack holders --seconds 10 --json a.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dev_stack.children import Child
from dev_stack.readiness import all_ready, facade_ready, service_ready, wait_ready
from jwt_authn.testing import LoopbackIssuer, generate_key
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc
from tools.loopback_source import SourceForwarder

HOST = "127.0.0.1"
ATTACKS = ("holders", "silent-unary", "bad-tokens", "slow-headers", "oversized", "full-heads")
DEPLOYMENTS = ("one", "split")
AUDIENCE = "secureroute"
#: Pause between two calls of one legitimate client.
CLIENT_PAUSE_S = 0.05
#: The kubelet's probe timeout in deploy/ (timeoutSeconds).
PROBE_TIMEOUT_S = 2.0
SETTLE_S = 10.0
#: The attackers' first seconds (1,000 connections or calls opened at once) are reported apart.
RAMP_S = 3.0
WARM_UP_S = 3.0
#: A refused or ended holder opens its call again after about this long (0.5 to 1.5 times): a
#: patient attacker, 1,000 calls a second in all, not a flood (a rate limit's job).
HOLDER_RETRY_S = 1.0
#: The silent-unary flood of issue 24: one client, one connection, from this loopback address.
SILENT_UNARY_SOURCE = "127.0.0.2"
SILENT_UNARY_RATE_PER_S = 150
#: Concurrent loops of the bad-token flood, per transport.
BAD_TOKEN_LOOPS = 40
SECURE_ROUTE = "/secureroute.v1.SecureRouteService/SecureRoute"


def _count(tally: dict[str, int], key: str) -> None:
    tally[key] = tally.get(key, 0) + 1


# Attackers (run in a child process) ---------------------------------------------------------


async def _hold_calls(grpc_port: int, stop_at: float, tally: dict[str, int]) -> None:
    own = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(f"{HOST}:{grpc_port}", options=own) for _ in range(10)]

    def open_call(index: int) -> Any:
        channel = channels[index % len(channels)]
        if index % 2:  # headers only: never a message
            return cast(Any, channel).stream_stream(SECURE_ROUTE)()
        return health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())

    async def holder(index: int) -> None:
        while time.monotonic() < stop_at:
            call = open_call(index)
            try:
                code = await asyncio.wait_for(call.code(), max(0.01, stop_at - time.monotonic()))
                _count(tally, code.name)
            except TimeoutError:
                _count(tally, "held_to_the_end")
                call.cancel()
                return
            await asyncio.sleep(HOLDER_RETRY_S * random.uniform(0.5, 1.5))  # noqa: S311

    for channel in channels:
        await channel.channel_ready()
    await asyncio.gather(*(holder(index) for index in range(1000)))
    for channel in channels:
        await channel.close(None)


async def _silent_unary(grpc_port: int, stop_at: float, tally: dict[str, int]) -> None:
    """Issue 24's flood: anonymous unary calls that never send their message, at a steady rate,
    on one connection from another loopback address; each is left to end by itself."""
    async with (
        SourceForwarder(SILENT_UNARY_SOURCE, grpc_port) as forwarder,
        grpc.aio.insecure_channel(
            f"{HOST}:{forwarder.port}", options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel,
    ):
        await channel.channel_ready()
        silent = cast(Any, channel).stream_stream("/grpc.health.v1.Health/Check")

        async def one() -> None:
            call = silent()  # headers only: no message, no half-close
            try:
                _count(tally, (await asyncio.wait_for(call.code(), 10.0)).name)
            except TimeoutError:
                call.cancel()
                _count(tally, "held_10s")

        calls: set[asyncio.Task[None]] = set()
        began = time.monotonic()
        index = 0
        while (now := time.monotonic()) < stop_at:
            await asyncio.sleep(max(0.0, began + index / SILENT_UNARY_RATE_PER_S - now))
            task = asyncio.ensure_future(one())
            calls.add(task)
            task.add_done_callback(calls.discard)
            index += 1
        await asyncio.gather(*calls)


async def _bad_tokens(
    grpc_port: int, http_port: int, stop_at: float, tally: dict[str, int], tokens: dict[str, list[str]]
) -> None:
    own = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(f"{HOST}:{grpc_port}", options=own) for _ in range(4)]
    kinds = sorted(tokens)

    async def grpc_loop(index: int) -> None:
        stub = secureroute_pb2_grpc.SecureRouteServiceStub(channels[index % len(channels)])  # type: ignore[no-untyped-call]
        while time.monotonic() < stop_at:
            kind = kinds[index % len(kinds)]
            token = random.choice(tokens[kind])  # noqa: S311
            try:
                await stub.SecureRoute(
                    secureroute_pb2.SecureRouteRequest(),
                    metadata=[("authorization", f"Bearer {token}")],
                    timeout=5,
                )
                _count(tally, f"grpc {kind} OK")
            except grpc.aio.AioRpcError as error:
                _count(tally, f"grpc {kind} {error.code().name}")
            index += 1

    async def http_loop(index: int, http: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop_at:
            kind = kinds[index % len(kinds)]
            token = random.choice(tokens[kind])  # noqa: S311
            try:
                headers = {"Authorization": f"Bearer {token}"}
                async with http.get(f"http://{HOST}:{http_port}/secure-route", headers=headers) as response:
                    await response.read()
                    _count(tally, f"http {kind} {response.status}")
            except aiohttp.ClientError as error:
                _count(tally, f"http {kind} {type(error).__name__}")
            index += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        await asyncio.gather(
            *(grpc_loop(index) for index in range(BAD_TOKEN_LOOPS)),
            *(http_loop(index, http) for index in range(BAD_TOKEN_LOOPS)),
        )
    for channel in channels:
        await channel.close(None)


async def _answer_status(reader: asyncio.StreamReader, stop_at: float) -> str:
    try:
        line = await asyncio.wait_for(reader.readline(), max(0.01, stop_at - time.monotonic()))
    except (TimeoutError, ConnectionError):
        return "no_answer"
    parts = line.split()
    return parts[1].decode() if len(parts) > 1 else "closed"


async def _connection_loop(
    http_port: int,
    stop_at: float,
    tally: dict[str, int],
    send: Callable[[asyncio.StreamWriter], Coroutine[Any, Any, None]],
) -> None:
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(HOST, http_port)
        except OSError:
            _count(tally, "connect_failed")
            await asyncio.sleep(0.1)
            continue
        try:
            sender = asyncio.create_task(send(writer))
            status = await _answer_status(reader, stop_at)
            sender.cancel()
            _count(tally, status)
        finally:
            writer.close()


async def _slow_headers(http_port: int, stop_at: float, tally: dict[str, int]) -> None:
    async def dribble(writer: asyncio.StreamWriter) -> None:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while True:
            await asyncio.sleep(1.0)
            writer.write(b"a")
            await writer.drain()

    await asyncio.gather(*(_connection_loop(http_port, stop_at, tally, dribble) for _ in range(1000)))


_BIG_FIELDS = b"".join(b"X-Big-%d: " % i + b"b" * (16 * 1024) + b"\r\n" for i in range(126))
_BIG_AUTHORIZATION = b"".join(b"Authorization: Bearer " + b"t" * 10_000 + b"\r\n" for _ in range(20))


async def _oversized(http_port: int, stop_at: float, tally: dict[str, int]) -> None:
    async def flood(writer: asyncio.StreamWriter, fields: bytes) -> None:
        writer.write(b"GET /secure-route HTTP/1.1\r\nHost: x\r\n" + fields)  # never the blank line
        await writer.drain()
        await asyncio.sleep(3600)

    async def one(fields: bytes) -> Callable[[asyncio.StreamWriter], Coroutine[Any, Any, None]]:
        return lambda writer: flood(writer, fields)

    senders = [await one(_BIG_FIELDS if i % 2 else _BIG_AUTHORIZATION) for i in range(200)]
    await asyncio.gather(*(_connection_loop(http_port, stop_at, tally, send) for send in senders))


async def _full_heads(http_port: int, stop_at: float, tally: dict[str, int]) -> None:
    fields = b"".join(b"X-Full-%02d: " % i + b"f" * 480 + b"\r\n" for i in range(31))

    async def hold(writer: asyncio.StreamWriter) -> None:
        writer.write(b"GET /health HTTP/1.1\r\n" + fields)  # 15 KiB, never the blank line
        await writer.drain()
        await asyncio.sleep(3600)

    await asyncio.gather(*(_connection_loop(http_port, stop_at, tally, hold) for _ in range(1000)))


@dataclass(frozen=True)
class AttackOrder:
    """What the attacker process is told (picklable: it crosses into a spawned process)."""

    name: str
    grpc_port: int
    http_port: int
    seconds: float
    tokens: dict[str, list[str]]


def _attack_main(order: AttackOrder, out: Any) -> None:
    name, grpc_port, http_port, tokens = order.name, order.grpc_port, order.http_port, order.tokens
    seconds = order.seconds
    tally: dict[str, int] = {}
    stop_at = time.monotonic() + seconds
    run: Callable[[], Coroutine[Any, Any, None]] = {
        "holders": lambda: _hold_calls(grpc_port, stop_at, tally),
        "silent-unary": lambda: _silent_unary(grpc_port, stop_at, tally),
        "bad-tokens": lambda: _bad_tokens(grpc_port, http_port, stop_at, tally, tokens),
        "slow-headers": lambda: _slow_headers(http_port, stop_at, tally),
        "oversized": lambda: _oversized(http_port, stop_at, tally),
        "full-heads": lambda: _full_heads(http_port, stop_at, tally),
    }[name]
    asyncio.run(run())
    out.put(tally)


def _flip_signature(token: str) -> str:
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[5] ^= 0x01
    return f"{head}.{payload}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def bad_tokens(issuer: LoopbackIssuer, per_kind: int = 50) -> dict[str, list[str]]:
    """Tokens the guard must refuse, ``per_kind`` of each (each with its own ``jti``, so no cache
    helps): signed by a key the issuer never published (50 kids), badly signed, expired, and a
    token of about 8.6 KiB: over the guard's 8 KiB cap, inside the HTTP side's 16 KiB head."""
    strangers = [generate_key("ES256", kid=f"attacker-{index}") for index in range(per_kind)]
    padding = {"pad": "p" * 6 * 1024}  # 8 KiB once base64url-encoded
    return {
        "unknown-kid": [issuer.tokens.issue(alg="ES256", key=key, ttl_s=3600) for key in strangers],
        "bad-signature": [_flip_signature(issuer.tokens.issue(ttl_s=3600)) for _ in range(per_kind)],
        "expired": [issuer.tokens.issue(ttl_s=-600) for _ in range(per_kind)],
        "oversized": [issuer.tokens.issue(ttl_s=3600, claims=padding) for _ in range(per_kind)],
    }


# Legitimate clients and probes (the main process) --------------------------------------------


@dataclass(eq=False)
class Client:
    name: str
    #: Whether a failure of this client fails the run (the public probes of before are shown only).
    counts: bool = True
    #: (seconds since the attack began, latency) of each successful call.
    latencies_s: list[tuple[float, float]] = field(default_factory=list)
    #: (seconds since the attack began, reason) of each failed call.
    failures: list[tuple[float, str]] = field(default_factory=list)

    def summary(self, ramp_s: float) -> dict[str, Any]:
        return {
            "client": self.name,
            "counts": self.counts,
            "whole": self._window(0.0),
            f"after_{ramp_s:g}s_ramp": self._window(ramp_s),
        }

    def _window(self, since_s: float) -> dict[str, Any]:
        latencies = sorted(latency for at, latency in self.latencies_s if at >= since_s) or [0.0]
        failures: dict[str, int] = {}
        for at, reason in self.failures:
            if at >= since_s:
                failures[reason] = failures.get(reason, 0) + 1
        ok = sum(1 for at, _ in self.latencies_s if at >= since_s)
        calls = ok + sum(failures.values())

        def pct(q: float) -> float:
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)

        return {
            "calls": calls,
            "success_pct": round(100 * ok / calls, 2) if calls else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(latencies[-1] * 1000, 1),
            "failures": failures,
        }


async def _measure(client: Client, call: Callable[[], Awaitable[bool]], stop: asyncio.Event) -> None:
    began = time.perf_counter()
    while not stop.is_set():
        started = time.perf_counter()
        try:
            ok = await asyncio.wait_for(call(), 5.0)
            reason = "wrong_answer"
        except Exception as error:  # every failure is counted by its kind, none stops the client
            ok, reason = False, type(error).__name__
            if isinstance(error, grpc.aio.AioRpcError):
                reason = error.code().name
        if ok:
            client.latencies_s.append((started - began, time.perf_counter() - started))
        else:
            client.failures.append((started - began, reason))
        await asyncio.sleep(CLIENT_PAUSE_S)


@dataclass(frozen=True)
class Target:
    deployment: str
    grpc_port: int
    http_port: int
    #: The started programs by name ("secureroute", or "service" and "facade"), in start order:
    #: their ports, RSS and log files.
    programs: dict[str, Child]

    @property
    def admin(self) -> dict[str, str]:
        """Admin listener base URL by program name."""
        return {name: f"http://{HOST}:{child.ports['metrics']}" for name, child in self.programs.items()}


async def _legitimate_clients(target: Target, token: str, stop: asyncio.Event) -> list[Client]:
    grpc_target = f"{HOST}:{target.grpc_port}"
    bearer = (("authorization", f"Bearer {token}"),)
    channel = grpc.aio.insecure_channel(grpc_target)
    stub = secureroute_pb2_grpc.SecureRouteServiceStub(channel)  # type: ignore[no-untyped-call]
    base = f"http://{HOST}:{target.http_port}"
    # A new connection per request: a slow-header attacker must not be able to lock legitimate
    # clients out by taking every connection slot; the kubelet opens one per probe too.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    probe_timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)

    async def secure_route() -> bool:
        reply = await stub.SecureRoute(secureroute_pb2.SecureRouteRequest(), metadata=bearer, timeout=5)
        return bool(reply.subject == "alice")

    async def public_check() -> bool:
        async with grpc.aio.insecure_channel(
            grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as fresh:
            reply = await health_pb2_grpc.HealthStub(fresh).Check(
                health_pb2.HealthCheckRequest(), timeout=PROBE_TIMEOUT_S
            )
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def http_get(url: str, headers: dict[str, str], limit: aiohttp.ClientTimeout | None = None) -> bool:
        async with http.get(url, headers=headers, timeout=limit) as response:
            await response.read()
            return response.status == 200

    def admin_probe(url: str) -> Callable[[], Awaitable[bool]]:
        return lambda: http_get(url, {}, probe_timeout)

    clients: dict[Client, Callable[[], Awaitable[bool]]] = {
        Client("gRPC SecureRoute (token)"): secure_route,
        Client("HTTP GET /secure-route (token, new connection)"): lambda: http_get(
            f"{base}/secure-route", {"Authorization": f"Bearer {token}"}
        ),
    }
    for program, admin in target.admin.items():
        for path in ("/health", "/ready"):
            clients[Client(f"probe: {program} admin GET {path}")] = admin_probe(f"{admin}{path}")
    clients[Client("public grpc.health.v1 Check (before issue 24)", counts=False)] = public_check
    clients[Client("public HTTP GET /health (before issue 24)", counts=False)] = lambda: http_get(
        f"{base}/health", {}, probe_timeout
    )
    try:
        await asyncio.gather(*(_measure(client, call, stop) for client, call in clients.items()))
    finally:
        await http.close()
        await channel.close(None)
    return list(clients)


async def _sample_rss(programs: dict[str, Child], stop: asyncio.Event, samples: dict[str, list[int]]) -> None:
    while not stop.is_set():
        for name, child in programs.items():
            samples.setdefault(name, []).append(child.rss_kib())
        await asyncio.sleep(0.2)


def _log_size(path: Path) -> int:
    """Bytes written to ``path`` so far."""
    return path.stat().st_size if path.exists() else 0


def _log_lines_by_logger(path: Path, since: int) -> dict[str, int]:
    """The JSON log lines written to ``path`` after byte ``since``, counted by logger."""
    with path.open("rb") as log:
        log.seek(since)
        lines = log.read().splitlines()
    counts: dict[str, int] = {}
    for line in lines:
        try:
            logger = str(json.loads(line).get("logger", "?"))
        except (ValueError, AttributeError):
            logger = "not JSON"
        counts[logger] = counts.get(logger, 0) + 1
    return counts


async def _run_attack(
    name: str, seconds: float, target: Target, token: str, tokens: dict[str, list[str]]
) -> dict[str, Any]:
    logs = {program: child.log_file for program, child in target.programs.items()}
    baseline = {program: child.rss_kib() for program, child in target.programs.items()}
    logs_before = {program: _log_size(path) for program, path in logs.items()}
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    attacker = context.Process(
        target=_attack_main,
        args=(AttackOrder(name, target.grpc_port, target.http_port, seconds, tokens), out),
    )
    stop = asyncio.Event()
    rss: dict[str, list[int]] = {}
    attacker.start()
    began = time.monotonic()
    sampler = asyncio.create_task(_sample_rss(target.programs, stop, rss))
    measuring = asyncio.create_task(_legitimate_clients(target, token, stop))
    await asyncio.sleep(seconds)
    stop.set()
    clients = await measuring
    await sampler
    tally = await asyncio.to_thread(out.get, True, 60)
    await asyncio.to_thread(attacker.join, 60)
    elapsed = time.monotonic() - began
    logs_after = {program: _log_size(path) for program, path in logs.items()}
    await asyncio.sleep(SETTLE_S)
    return {
        "attack": name,
        "deployment": target.deployment,
        "seconds": seconds,
        "attacker_outcomes": tally,
        "clients": [client.summary(RAMP_S) for client in clients],
        "rss_kib": {
            program: {
                "baseline": baseline[program],
                "peak": max(rss.get(program) or [0]),
                f"after_{SETTLE_S:g}s": child.rss_kib(),
            }
            for program, child in target.programs.items()
        },
        "logs": {
            program: {
                "bytes": logs_after[program] - logs_before[program],
                "bytes_per_s": round((logs_after[program] - logs_before[program]) / elapsed),
                "lines_by_logger": _log_lines_by_logger(path, logs_before[program]),
            }
            for program, path in logs.items()
        },
    }


#: As deploy/'s ConfigMaps have them: JSON lines at INFO (``--log-level`` changes the level).
_LOGGING = ["--log-format", "json", "--log-level", "INFO"]
#: Every listener binds a free loopback port and the program reports which (nothing to race for).
_ANY_PORT = f"{HOST}:0"


async def _start_stack(deployment: str, issuer: LoopbackIssuer, logs: Path) -> Target:
    """The programs, default limits, the admin listener on loopback, once they serve."""
    authn = ["--issuer", issuer.url, "--audiences", AUDIENCE]
    programs: dict[str, Child] = {}

    async def start(name: str, module: str, *flags: str, kinds: tuple[str, ...]) -> Child:
        argv = [sys.executable, "-m", module, *flags, "--metrics-listen", _ANY_PORT, *_LOGGING]
        programs[name] = Child.start(name, argv, log=logs / f"{name}.log")
        return await programs[name].listening(*kinds, "metrics")

    try:
        if deployment == "one":
            one = await start(
                "secureroute", "secureroute", "--grpc-listen", _ANY_PORT, "--http-listen", _ANY_PORT, *authn,
                kinds=("grpc", "http"),
            )  # fmt: skip
            grpc_port, http_port = one.ports["grpc"], one.ports["http"]
        else:
            service = await start("service", "service", "--listen", _ANY_PORT, *authn, kinds=("grpc",))
            grpc_port = service.ports["grpc"]
            backend = ("--backend", f"{HOST}:{grpc_port}")
            facade = await start("facade", "http_facade", "--listen", _ANY_PORT, *backend, kinds=("http",))
            http_port = facade.ports["http"]
        ready = all_ready(service_ready(f"{HOST}:{grpc_port}"), facade_ready(f"http://{HOST}:{http_port}"))
        await wait_ready(deployment, ready, list(programs.values()), deadline_s=30)
    except BaseException:
        await _stop(programs)
        raise
    return Target(deployment, grpc_port, http_port, programs)


async def _stop(programs: dict[str, Child]) -> None:
    for child in reversed(programs.values()):  # the facade before the service it calls
        await child.stop()


async def _attack_fresh_stack(
    deployment: str, issuer: LoopbackIssuer, name: str, seconds: float, tokens: dict[str, list[str]]
) -> dict[str, Any]:
    """One attack against programs started for it (a clean baseline each)."""
    with tempfile.TemporaryDirectory(prefix="secureroute-attack-") as logs:
        target = await _start_stack(deployment, issuer, Path(logs))
        try:
            token = issuer.tokens.issue(ttl_s=3600)
            await _warm_up(target, token)
            return await _run_attack(name, seconds, target, token, tokens)
        finally:
            await _stop(target.programs)


async def _warm_up(target: Target, token: str) -> None:
    """A few seconds of the legitimate clients alone, so the baseline is a warm process's."""
    stop = asyncio.Event()
    clients = asyncio.create_task(_legitimate_clients(target, token, stop))
    await asyncio.sleep(WARM_UP_S)
    stop.set()
    await clients


async def main(deployment: str, attacks: list[str], seconds: float) -> list[dict[str, Any]]:
    results = []
    async with LoopbackIssuer(audience=AUDIENCE) as issuer:
        tokens = bad_tokens(issuer)
        for name in attacks:
            print(f"attack {name} on {deployment}: {seconds:g} s ...", file=sys.stderr)
            result = await _attack_fresh_stack(deployment, issuer, name, seconds, tokens)
            results.append(result)
    return results


def _print(results: list[dict[str, Any]]) -> None:
    for result in results:
        print(f"\n## {result['attack']} ({result['deployment']})  attackers: {result['attacker_outcomes']}")
        for program, rss in result["rss_kib"].items():
            print(f"  VmRSS KiB {program}: {rss}")
        for program, written in result["logs"].items():
            print(f"  logs {program}: {written}")
        for row in result["clients"]:
            for window in ("whole", f"after_{RAMP_S:g}s_ramp"):
                w = row[window]
                latency = f"p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms, max {w['max_ms']} ms"
                print(f"  {row['client']} [{window}]: {w['calls']} calls, {w['success_pct']} % ok, {latency}")
                if w["failures"]:
                    print(f"    failures: {w['failures']}")


def failed_clients(results: list[dict[str, Any]]) -> list[str]:
    """Legitimate clients and admin probes below 100 % in some attack (the run's verdict)."""
    return [
        f"{result['attack']}: {row['client']} {row['whole']['success_pct']} %"
        for result in results
        for row in result["clients"]
        if row["counts"] and row["whole"]["success_pct"] < 100
    ]


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--deployment",
        choices=DEPLOYMENTS,
        default="one",
        help="the one program (default) or the split programs",
    )
    parser.add_argument(
        "--attack", action="append", choices=ATTACKS, help="one attack (repeatable); default all"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each attack (at most 120)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING"),
        default="INFO",
        help="the programs' log level (INFO as in deploy/; WARNING shows what logging costs)",
    )
    args = parser.parse_args()
    _LOGGING[-1] = args.log_level
    seconds = min(max(args.seconds, 1.0), 120.0)  # bounded, whatever is asked
    results = asyncio.run(main(args.deployment, args.attack or list(ATTACKS), seconds))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    _print(results)
    failed = failed_clients(results)
    print(
        "\nlegitimate clients and admin probes: " + ("; ".join(failed) if failed else "100 % in every attack")
    )
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    _cli()
