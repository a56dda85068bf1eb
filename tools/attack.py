"""Resource-exhaustion attacks against the stack on loopback, one at a time, with legitimate
clients measured meanwhile (issue 16; the write-up is in docs/reliability.md).

It starts a loopback issuer (``jwt_authn.testing.LoopbackIssuer``), ``python -m service`` and
``python -m http_facade`` (default limits, metrics off), then runs each attack for
``--seconds`` in a child process (so the attackers' CPU does not slow the measuring loop):

- ``holders``: 1,000 anonymous gRPC calls held open: 500 health ``Watch`` streams and 500
  ``SecureRoute`` calls without a token that never send their message, over 10 connections;
  each one that ends is opened again about a second later;
- ``slow-headers``: 1,000 facade connections sending a request head one byte a second; each
  one that is closed is opened again;
- ``oversized``: 200 connections sending the heads of issue 16 as fast as they are answered
  (126 fields of 16 KiB, and 20 ``Authorization`` values of 10,000 bytes), counting the answers;
- ``full-heads``: 1,000 connections each holding a head just under the budget (31 fields,
  15 KiB) without ending it: the worst case of the facade's memory.

Meanwhile the main process runs the legitimate clients: a gRPC ``SecureRoute`` with a valid
token, a ``grpc.health.v1`` Check on a new connection each time (as the kubelet's probe), and
``GET /secure-route`` + ``GET /health`` through the facade on a new connection each time. It
reports each one's success rate and latency percentiles, and the facade's VmRSS (baseline,
peak, and 10 s after the attack).

Usage:
    .venv/bin/python -m tools.attack                      # every attack, 20 s each
    .venv/bin/python -m tools.attack --attack holders --seconds 10 --json attack.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jwt_authn.testing import LoopbackIssuer
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
ATTACKS = ("holders", "slow-headers", "oversized", "full-heads")
#: Pause between two calls of one legitimate client.
CLIENT_PAUSE_S = 0.05
SETTLE_S = 10.0
#: The attackers' first seconds (1,000 connections or calls opened at once) are reported apart.
RAMP_S = 3.0
WARM_UP_S = 3.0
#: A refused or ended holder opens its call again after about this long (0.5 to 1.5 times): a
#: patient attacker, 1,000 calls a second in all, not a flood (a rate limit's job).
HOLDER_RETRY_S = 1.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# Attackers (run in a child process) ---------------------------------------------------------


async def _hold_calls(grpc_port: int, stop_at: float, tally: dict[str, int]) -> None:
    own = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(f"{HOST}:{grpc_port}", options=own) for _ in range(10)]
    silent = "/secureroute.v1.SecureRouteService/SecureRoute"

    def open_call(index: int) -> Any:
        channel = channels[index % len(channels)]
        if index % 2:  # headers only: never a message
            return cast(Any, channel).stream_stream(silent)()
        return health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())

    async def holder(index: int) -> None:
        while time.monotonic() < stop_at:
            call = open_call(index)
            try:
                code = await asyncio.wait_for(call.code(), max(0.01, stop_at - time.monotonic()))
                tally[code.name] = tally.get(code.name, 0) + 1
            except TimeoutError:
                tally["held_to_the_end"] = tally.get("held_to_the_end", 0) + 1
                call.cancel()
                return
            await asyncio.sleep(HOLDER_RETRY_S * random.uniform(0.5, 1.5))  # noqa: S311

    for channel in channels:
        await channel.channel_ready()
    await asyncio.gather(*(holder(index) for index in range(1000)))
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
            tally["connect_failed"] = tally.get("connect_failed", 0) + 1
            await asyncio.sleep(0.1)
            continue
        try:
            sender = asyncio.create_task(send(writer))
            status = await _answer_status(reader, stop_at)
            sender.cancel()
            tally[status] = tally.get(status, 0) + 1
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


def _attack_main(name: str, grpc_port: int, http_port: int, seconds: float, out: Any) -> None:
    tally: dict[str, int] = {}
    stop_at = time.monotonic() + seconds
    run: Callable[[], Coroutine[Any, Any, None]] = {
        "holders": lambda: _hold_calls(grpc_port, stop_at, tally),
        "slow-headers": lambda: _slow_headers(http_port, stop_at, tally),
        "oversized": lambda: _oversized(http_port, stop_at, tally),
        "full-heads": lambda: _full_heads(http_port, stop_at, tally),
    }[name]
    asyncio.run(run())
    out.put(tally)


# Legitimate clients (the main process) ------------------------------------------------------


@dataclass(eq=False)
class Client:
    name: str
    #: (seconds since the attack began, latency) of each successful call.
    latencies_s: list[tuple[float, float]] = field(default_factory=list)
    #: (seconds since the attack began, reason) of each failed call.
    failures: list[tuple[float, str]] = field(default_factory=list)

    def summary(self, ramp_s: float) -> dict[str, Any]:
        return {
            "client": self.name,
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


async def _legitimate_clients(
    grpc_port: int, http_port: int, token: str, stop: asyncio.Event
) -> list[Client]:
    target = f"{HOST}:{grpc_port}"
    bearer = (("authorization", f"Bearer {token}"),)
    channel = grpc.aio.insecure_channel(target)
    stub = secureroute_pb2_grpc.SecureRouteServiceStub(channel)  # type: ignore[no-untyped-call]
    base = f"http://{HOST}:{http_port}"
    # A new connection per request: a slow-header attacker must not be able to lock legitimate
    # clients out by taking every connection slot.
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))

    async def secure_route() -> bool:
        reply = await stub.SecureRoute(secureroute_pb2.SecureRouteRequest(), metadata=bearer, timeout=5)
        return bool(reply.subject == "alice")

    async def probe() -> bool:
        async with grpc.aio.insecure_channel(
            target, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as fresh:
            reply = await health_pb2_grpc.HealthStub(fresh).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def http_get(path: str, headers: dict[str, str]) -> bool:
        async with http.get(f"{base}{path}", headers=headers) as response:
            await response.read()
            return response.status == 200

    clients = {
        Client("grpc SecureRoute (token)"): secure_route,
        Client("grpc.health.v1 Check (new connection, as the probe)"): probe,
        Client("HTTP GET /secure-route (token, new connection)"): lambda: http_get(
            "/secure-route", {"Authorization": f"Bearer {token}"}
        ),
        Client("HTTP GET /health (new connection)"): lambda: http_get("/health", {}),
    }
    try:
        await asyncio.gather(*(_measure(client, call, stop) for client, call in clients.items()))
    finally:
        await http.close()
        await channel.close(None)
    return list(clients)


async def _sample_rss(pid: int, stop: asyncio.Event, samples: list[int]) -> None:
    while not stop.is_set():
        samples.append(_rss_kib(pid))
        await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Target:
    grpc_port: int
    http_port: int
    facade_pid: int


async def _run_attack(name: str, seconds: float, target: Target, token: str) -> dict[str, Any]:
    grpc_port, http_port, facade_pid = target.grpc_port, target.http_port, target.facade_pid
    baseline = _rss_kib(facade_pid)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    attacker = context.Process(target=_attack_main, args=(name, grpc_port, http_port, seconds, out))
    stop = asyncio.Event()
    rss: list[int] = []
    attacker.start()
    sampler = asyncio.create_task(_sample_rss(facade_pid, stop, rss))
    measuring = asyncio.create_task(_legitimate_clients(grpc_port, http_port, token, stop))
    await asyncio.sleep(seconds)
    stop.set()
    clients = await measuring
    await sampler
    tally = await asyncio.to_thread(out.get, True, 60)
    await asyncio.to_thread(attacker.join, 60)
    await asyncio.sleep(SETTLE_S)
    after = _rss_kib(facade_pid)
    return {
        "attack": name,
        "seconds": seconds,
        "attacker_outcomes": tally,
        "clients": [client.summary(RAMP_S) for client in clients],
        "facade_rss_kib": {"baseline": baseline, "peak": max(rss or [0]), f"after_{SETTLE_S:g}s": after},
    }


async def _start(argv: list[str]) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECUREROUTE_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _wait_ready(http_port: int, token: str) -> None:
    async with asyncio.timeout(30), aiohttp.ClientSession() as http:
        while True:
            try:
                headers = {"Authorization": f"Bearer {token}"}
                async with http.get(f"http://{HOST}:{http_port}/secure-route", headers=headers) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def _attack_fresh_stack(issuer: LoopbackIssuer, name: str, seconds: float) -> dict[str, Any]:
    """One attack against a service and a facade started for it (a clean baseline each)."""
    grpc_port, http_port = _free_port(), _free_port()
    quiet = ["--metrics-listen", "off", "--log-level", "WARNING"]
    service = await _start(
        [
            "-m",
            "service",
            "--listen",
            f"{HOST}:{grpc_port}",
            "--issuer",
            issuer.url,
            "--audience",
            "secureroute",
            *quiet,
        ]
    )
    facade = await _start(
        ["-m", "http_facade", "--listen", f"{HOST}:{http_port}", "--backend", f"{HOST}:{grpc_port}", *quiet]
    )
    try:
        token = issuer.tokens.issue(ttl_s=3600)
        await _wait_ready(http_port, token)
        await _warm_up(grpc_port, http_port, token)
        return await _run_attack(name, seconds, Target(grpc_port, http_port, facade.pid), token)
    finally:
        for process in (facade, service):
            process.terminate()
            await process.wait()


async def _warm_up(grpc_port: int, http_port: int, token: str) -> None:
    """A few seconds of the legitimate clients alone, so the baseline is a warm process's."""
    stop = asyncio.Event()
    clients = asyncio.create_task(_legitimate_clients(grpc_port, http_port, token, stop))
    await asyncio.sleep(WARM_UP_S)
    stop.set()
    await clients


async def main(attacks: list[str], seconds: float) -> list[dict[str, Any]]:
    results = []
    async with LoopbackIssuer() as issuer:
        for name in attacks:
            print(f"attack {name}: {seconds:g} s ...", file=sys.stderr)
            result = await _attack_fresh_stack(issuer, name, seconds)
            print(json.dumps(result, indent=1), file=sys.stderr)
            results.append(result)
    return results


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--attack", action="append", choices=ATTACKS, help="one attack (repeatable); default all"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each attack (at most 120)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    seconds = min(max(args.seconds, 1.0), 120.0)  # bounded, whatever is asked
    results = asyncio.run(main(args.attack or list(ATTACKS), seconds))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    for result in results:
        rss = result["facade_rss_kib"]
        print(f"\n## {result['attack']}  (facade VmRSS KiB: {rss})  attackers: {result['attacker_outcomes']}")
        for row in result["clients"]:
            for window in ("whole", f"after_{RAMP_S:g}s_ramp"):
                w = row[window]
                latency = f"p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms, max {w['max_ms']} ms"
                print(f"  {row['client']} [{window}]: {w['calls']} calls, {w['success_pct']} % ok, {latency}")
                if w["failures"]:
                    print(f"    failures: {w['failures']}")


if __name__ == "__main__":
    _cli()
