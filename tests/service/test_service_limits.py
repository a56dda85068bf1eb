"""The service's connection and call limits, and the drain delay, on a real server.

Health ``Watch`` streams are long-lived calls anyone may open, so they are the load here:
``max_anonymous_streams`` counts them across the server, ``max_concurrent_streams`` per HTTP/2
connection (``test_service_admission.py`` tests the other limits of anonymous calls).
``max_connection_idle_s`` sends an idle connection a GOAWAY (the channel goes IDLE).
"""

from __future__ import annotations

import asyncio
import time
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
SERVICE = "secureroute.v1.SecureRouteService"


def _health(channel: grpc.aio.Channel) -> Any:
    return health_pb2_grpc.HealthStub(channel)


async def _check(channel: grpc.aio.Channel, timeout_s: float = WAIT_S) -> int:
    reply = await _health(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
    return int(reply.status)


@asynccontextmanager
async def _watching(channel: grpc.aio.Channel, count: int) -> AsyncIterator[list[Any]]:
    """``count`` open Watch calls on ``channel``, each past its first reply (so surely running)."""
    watches = [_health(channel).Watch(health_pb2.HealthCheckRequest(service="")) for _ in range(count)]
    try:
        for watch in watches:
            await asyncio.wait_for(watch.read(), WAIT_S)
        yield watches
    finally:
        for watch in watches:
            watch.cancel()


def test_defaults() -> None:
    settings = ServiceSettings.load(["--issuer", "https://idp.example.com/", "--audiences", "a"], environ={})
    assert settings.grpc.max_concurrent_rpcs == 1000
    assert settings.grpc.max_anonymous_rpcs == settings.grpc.max_anonymous_streams == 100
    assert settings.grpc.request_message_timeout_s == 1.0
    assert (settings.grpc.max_connection_age_s, settings.grpc.max_connection_age_grace_s) == (1800.0, 30.0)
    assert settings.grpc.max_concurrent_streams == 512
    assert settings.grpc.max_connection_idle_s == 300.0
    assert settings.drain_delay_s == 1.0


async def test_watches_past_max_anonymous_streams_are_resource_exhausted(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    app = await start_service(make_service_settings(issuer.url, "--max-anonymous-streams", "2"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        async with _watching(channel, 2):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _watching(channel, 1).__aenter__()
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # Watchers cannot take the room of probes: Check is a unary call.
            assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
        # The watches ended: there is room again.
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                async with _watching(channel, 1):
                    break
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert time.monotonic() < deadline, "the limit never freed up"
                await asyncio.sleep(0.05)


async def test_max_concurrent_streams_is_per_connection(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    app = await start_service(make_service_settings(issuer.url, "--max-concurrent-streams", "2"))
    target = f"127.0.0.1:{app.port}"
    # A channel of its own subchannel pool: its own TCP connection, not a shared one.
    own_connection = [("grpc.use_local_subchannel_pool", 1)]
    async with (
        grpc.aio.insecure_channel(target, options=own_connection) as busy,
        grpc.aio.insecure_channel(target, options=own_connection) as other,
    ):
        async with _watching(busy, 2):
            # A third call on the full connection waits for a free stream (here: past its deadline)...
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _check(busy, timeout_s=0.5)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # ...while another connection is served at once: the limit is per connection.
            assert await _check(other) == health_pb2.HealthCheckResponse.SERVING
        assert await _check(busy) == health_pb2.HealthCheckResponse.SERVING


async def test_an_idle_connection_is_closed_after_max_connection_idle(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    app = await start_service(make_service_settings(issuer.url, "--max-connection-idle-s", "0.5"))
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{app.port}", options=[("grpc.use_local_subchannel_pool", 1)]
    ) as channel:
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
        assert channel.get_state() == grpc.ChannelConnectivity.READY
        # The server's GOAWAY turns the channel IDLE (it would stay READY without the limit).
        async with asyncio.timeout(WAIT_S):
            while channel.get_state() == grpc.ChannelConnectivity.READY:
                await channel.wait_for_state_change(grpc.ChannelConnectivity.READY)
        assert channel.get_state() == grpc.ChannelConnectivity.IDLE
        # The next call reconnects by itself.
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_a_busy_connection_is_not_idle(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    app = await start_service(make_service_settings(issuer.url, "--max-connection-idle-s", "0.3"))
    async with (
        grpc.aio.insecure_channel(
            f"127.0.0.1:{app.port}", options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel,
        _watching(channel, 1),
    ):
        await asyncio.sleep(1.0)
        assert channel.get_state() == grpc.ChannelConnectivity.READY


async def test_the_drain_delay_keeps_serving_after_not_serving(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    """stop(): health NOT_SERVING at once, calls still answered for the drain delay, then the
    server stops (new calls UNAVAILABLE)."""
    app = await start_service(make_service_settings(issuer.url, "--drain-delay-s", "1"))
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    token = issuer.tokens.issue()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        stub = secureroute_stub(channel)
        watch = _health(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        assert (await asyncio.wait_for(watch.read(), WAIT_S)).status == health_pb2.HealthCheckResponse.SERVING
        started = time.monotonic()
        stopping = asyncio.create_task(app.stop(grace_s=0.5))
        assert (
            await asyncio.wait_for(watch.read(), WAIT_S)
        ).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert time.monotonic() - started < 0.5
        # Still serving during the drain delay.
        reply = await stub.SecureRoute(
            secureroute_pb2.SecureRouteRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=5
        )
        assert reply.subject == "alice" and not stopping.done()
        await asyncio.wait_for(stopping, WAIT_S)
        assert time.monotonic() - started >= 1.0
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SecureRoute(
                secureroute_pb2.SecureRouteRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=5,
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_watch_ends_after_max_connection_age_and_its_grace(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    """No anonymous Watch holds its slot for ever: the connection's GOAWAY, then the grace, end it."""
    app = await start_service(
        make_service_settings(
            issuer.url, "--max-connection-age-s", "0.5", "--max-connection-age-grace-s", "0.5"
        )
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        watch = _health(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await asyncio.wait_for(watch.read(), WAIT_S)).status == health_pb2.HealthCheckResponse.SERVING
        assert await asyncio.wait_for(watch.code(), WAIT_S) != grpc.StatusCode.OK
        # The channel reconnects by itself: the next call is served.
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
