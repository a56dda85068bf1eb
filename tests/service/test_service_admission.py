"""Calls without a token cannot starve token holders or probes (``service.admission``).

A call that never sends its request message is opened as a raw stream-stream call on the
method's path, and never written to: the server sees its headers only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import secureroute_stub

from jwt_authn.testing import LoopbackIssuer
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer, ServiceSettings

StartService = Callable[[ServiceSettings], Awaitable[SecureRouteServer]]
MakeSettings = Callable[..., ServiceSettings]
WAIT_S = 15.0
CHECK = "/grpc.health.v1.Health/Check"
SECURE_ROUTE = "/secureroute.v1.SecureRouteService/SecureRoute"


@asynccontextmanager
async def _silent_calls(channel: grpc.aio.Channel, method: str, count: int) -> AsyncIterator[list[Any]]:
    """``count`` calls of ``method`` whose request message never comes, each surely started.

    The channel is connected first: grpc's client holds back calls made while it connects."""
    await asyncio.wait_for(channel.channel_ready(), WAIT_S)
    calls = [channel.stream_stream(method)() for _ in range(count)]
    try:
        for call in calls:
            await asyncio.wait_for(call.wait_for_connection(), WAIT_S)
        yield calls
    finally:
        for call in calls:
            call.cancel()


async def _check(channel: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=WAIT_S)
    return int(reply.status)


async def _secure_route(channel: grpc.aio.Channel, token: str) -> str:
    stub = secureroute_stub(channel)
    reply = await stub.SecureRoute(
        secureroute_pb2.SecureRouteRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=WAIT_S
    )
    return str(reply.subject)


async def _settle(app: SecureRouteServer, unary: int, streams: int) -> None:
    """Wait until the server has admitted exactly this many anonymous calls."""
    admission = app.admission
    async with asyncio.timeout(WAIT_S):
        # The pools are plain counters with no event to wait on.
        while (admission.unary.active, admission.streams.active) != (unary, streams):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_refused_call_is_answered_before_its_message(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    # The message deadline is far beyond the wait: only an answer before the message passes.
    app = await start_service(make_service_settings(issuer.url, "--request-message-timeout-s", "600"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        no_token = channel.stream_stream(SECURE_ROUTE)()
        junk = channel.stream_stream(SECURE_ROUTE)(metadata=(("authorization", "Bearer junk.junk.junk"),))
        for call in (no_token, junk):
            assert await asyncio.wait_for(call.code(), WAIT_S) == grpc.StatusCode.UNAUTHENTICATED
        unknown = channel.stream_stream("/secureroute.v1.SecureRouteService/Nope")()
        assert await asyncio.wait_for(unknown.code(), WAIT_S) == grpc.StatusCode.UNIMPLEMENTED
    await _settle(app, 0, 0)


async def test_a_withheld_message_holds_its_slot_only_until_the_message_deadline(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    app = await start_service(
        make_service_settings(issuer.url, "--max-anonymous-rpcs", "3", "--request-message-timeout-s", "0.5")
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        async with _silent_calls(channel, CHECK, 3) as held:
            await _settle(app, 3, 0)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _check(channel)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            for call in held:
                assert await asyncio.wait_for(call.code(), WAIT_S) == grpc.StatusCode.DEADLINE_EXCEEDED
        await _settle(app, 0, 0)
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_token_holders_and_probes_pass_while_the_anonymous_room_is_full(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    """The pools full of silent Checks and Watches: Check on its own room is refused, yet a token
    holder is served, and so is a probe once silent unary calls time out; Watches never starve it."""
    app = await start_service(
        make_service_settings(
            issuer.url,
            "--max-concurrent-rpcs",
            "10",
            "--max-anonymous-rpcs",
            "2",
            "--max-anonymous-streams",
            "2",
            "--request-message-timeout-s",
            "600",
        )
    )
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    token = issuer.tokens.issue()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        watch = "/grpc.health.v1.Health/Watch"
        async with _silent_calls(channel, watch, 4) as watches:
            await _settle(app, 0, 2)
            refused = [await asyncio.wait_for(call.code(), WAIT_S) for call in watches[2:]]
            assert refused == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
            assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
            async with _silent_calls(channel, CHECK, 2):
                await _settle(app, 2, 2)
                assert [await _secure_route(channel, token) for _ in range(20)] == ["alice"] * 20
        await _settle(app, 0, 0)
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
