"""The admin listener's probes (issue 24): ``/health`` and ``/ready`` beside ``/metrics``, answered
from the program's own state, so no anonymous caller of the public ports can starve them.

Before: one client opening 150 silent anonymous unary calls a second kept the anonymous pool
full, and the kubelet's probes (gRPC health, the public ``/health``) failed about two times in
three while token holders were served.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiohttp
import grpc
from helpers import fetch, secureroute_stub

from http_facade import FacadeSettings
from http_facade.runner import FacadeServer
from jwt_authn.testing import Fault, LoopbackIssuer
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer, ServiceSettings
from tests.ops.conftest import Spawn
from tools.loopback_source import SourceForwarder

WAIT_S = 15.0
StartService = Callable[[ServiceSettings], Awaitable[SecureRouteServer]]
CHECK = "/grpc.health.v1.Health/Check"


async def _until(http: aiohttp.ClientSession, url: str, status: int) -> None:
    async with asyncio.timeout(WAIT_S):
        while True:
            if (await fetch(http, url))[0] == status:
                return
            await asyncio.sleep(0.05)


async def test_the_service_admin_probes_follow_the_keys_and_the_drain(
    issuer: LoopbackIssuer,
    start_service: StartService,
    make_service_settings: Callable[..., ServiceSettings],
    http: aiohttp.ClientSession,
) -> None:
    issuer.fault = Fault(status=503)  # no key set yet
    app = await start_service(make_service_settings(issuer.url, "--metrics-listen", "127.0.0.1:0"))
    admin = f"http://127.0.0.1:{app.metrics_port}"
    assert (await fetch(http, f"{admin}/health"))[:2] == (200, "SERVING\n")
    assert (await fetch(http, f"{admin}/ready"))[:2] == (503, "NOT_SERVING\n")
    issuer.fault = Fault()
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    await _until(http, f"{admin}/ready", 200)
    assert (await fetch(http, f"{admin}/ready"))[:2] == (200, "SERVING\n")
    assert (await fetch(http, f"{admin}/metrics"))[0] == 200
    await app.health.enter_shutdown()  # what SIGTERM does first
    assert (await fetch(http, f"{admin}/ready"))[:2] == (503, "NOT_SERVING\n")
    assert (await fetch(http, f"{admin}/health"))[:2] == (200, "SERVING\n")  # never restart a draining pod


async def test_the_facade_admin_probes_are_up_while_it_serves(
    service: SecureRouteServer, http: aiohttp.ClientSession
) -> None:
    backend = f"127.0.0.1:{service.port}"
    settings = FacadeSettings.load(
        ["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--backend", backend]
    )
    facade = FacadeServer(settings)
    await facade.start()
    try:
        admin = f"http://127.0.0.1:{facade.metrics_port}"
        assert (await fetch(http, f"{admin}/health"))[:2] == (200, "SERVING\n")
        assert (await fetch(http, f"{admin}/ready"))[:2] == (200, "SERVING\n")
        # The probes live on the admin listener only.
        assert (await fetch(http, f"{facade.url()}/ready"))[0] == 404
    finally:
        await facade.stop()


async def _silent_unary_flood(port: int, rate_per_s: float, seconds: float, tally: dict[str, int]) -> None:
    """Silent anonymous unary calls (headers, never the message) on one connection: the flood of
    issue 24. Each call is left to end by itself (the server's request-message deadline)."""
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
    ) as channel:
        await channel.channel_ready()
        silent = cast(Any, channel).stream_stream(CHECK)

        async def one() -> None:
            call = silent()  # headers only: no message, no half-close
            try:
                code = await asyncio.wait_for(call.code(), 10.0)
                tally[code.name] = tally.get(code.name, 0) + 1
            except TimeoutError:
                call.cancel()
                tally["held"] = tally.get("held", 0) + 1

        calls: list[asyncio.Task[None]] = []
        began = time.monotonic()
        for index in range(round(rate_per_s * seconds)):  # bounded in count ...
            await asyncio.sleep(max(0.0, began + index / rate_per_s - time.monotonic()))
            calls.append(asyncio.ensure_future(one()))
        await asyncio.gather(*calls)  # ... and each call in time


async def test_admin_probes_stay_up_during_a_silent_unary_flood_against_the_one_program(
    issuer: LoopbackIssuer, spawn: Spawn
) -> None:
    program = await spawn(
        "secureroute", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
        "--metrics-listen", "127.0.0.1:0", "--issuer", issuer.url, "--audiences", "secureroute",
    )  # fmt: skip
    try:
        grpc_port = int((await program.wait_for(r"listening on \S+:(\d+) \(grpc\)"))[0].group(1))
        admin_port = int((await program.wait_for(r"metrics on http://\S+:(\d+)/metrics"))[0].group(1))
        admin = f"http://127.0.0.1:{admin_port}"
        token = issuer.tokens.issue(sub="erin")
        connector = aiohttp.TCPConnector(force_close=True)  # a new connection per probe, as the kubelet
        async with (
            aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=2)) as http,
            grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
            SourceForwarder("127.0.0.2", grpc_port) as from_127_0_0_2,
        ):
            await _until(http, f"{admin}/ready", 200)
            stub = secureroute_stub(channel)
            flood: dict[str, int] = {}
            probes: list[tuple[str, int | str]] = []
            token_holders: list[str] = []
            flooding = asyncio.ensure_future(_silent_unary_flood(from_127_0_0_2.port, 150, 6.0, flood))

            async def probe(path: str) -> None:
                while not flooding.done():
                    try:
                        probes.append((path, (await fetch(http, f"{admin}{path}"))[0]))
                    except (aiohttp.ClientError, TimeoutError) as error:
                        probes.append((path, type(error).__name__))
                    await asyncio.sleep(0.05)

            async def hold_a_token() -> None:
                while not flooding.done():
                    try:
                        reply = await stub.SecureRoute(
                            secureroute_pb2.SecureRouteRequest(),
                            metadata=[("authorization", f"Bearer {token}")],
                            timeout=5,
                        )
                        token_holders.append(reply.subject)
                    except grpc.aio.AioRpcError as error:
                        token_holders.append(error.code().name)
                    await asyncio.sleep(0.05)

            await asyncio.gather(flooding, probe("/health"), probe("/ready"), hold_a_token())
    finally:
        await program.stop()
    # The flood was real: the anonymous pool (or a per-client limit) refused part of it.
    assert flood.get("RESOURCE_EXHAUSTED", 0) > 0, flood
    assert len(probes) >= 40, probes
    assert {answer for _, answer in probes} == {200}, probes
    assert token_holders and set(token_holders) == {"erin"}, token_holders


async def test_the_one_programs_readiness_drops_at_sigterm_while_liveness_stays(
    issuer: LoopbackIssuer, spawn: Spawn
) -> None:
    program = await spawn(
        "secureroute", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
        "--metrics-listen", "127.0.0.1:0", "--issuer", issuer.url, "--audiences", "secureroute",
        "--drain-delay-s", "2",
    )  # fmt: skip
    admin_port = int((await program.wait_for(r"metrics on http://\S+:(\d+)/metrics"))[0].group(1))
    admin = f"http://127.0.0.1:{admin_port}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as http:
        await _until(http, f"{admin}/ready", 200)
        program.send_signal(signal.SIGTERM)
        await program.wait_for("still serving for")  # the drain delay has begun
        assert (await fetch(http, f"{admin}/ready"))[:2] == (503, "NOT_SERVING\n")
        assert (await fetch(http, f"{admin}/health"))[:2] == (200, "SERVING\n")
    assert await program.stop() == 0
