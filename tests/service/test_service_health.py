"""grpc.health.v1 statuses.

"" is SERVING from the start; the service is NOT_SERVING until its key set loads; everything
turns NOT_SERVING on stop, and in-flight calls finish within the grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import secureroute_stub

from jwt_authn.testing import Fault, LoopbackIssuer
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer, ServiceSettings, build_server

SERVICE = "secureroute.v1.SecureRouteService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
WAIT_S = 15.0

StartService = Callable[[ServiceSettings], Awaitable[SecureRouteServer]]


async def _check(channel: grpc.aio.Channel, service: str) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
    return int(reply.status)


async def test_ready_service_reports_serving(channel: grpc.aio.Channel) -> None:
    assert await _check(channel, "") == SERVING
    assert await _check(channel, SERVICE) == SERVING


async def test_unknown_service_is_not_found(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _check(channel, "no.such.Service")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_service_is_not_serving_until_the_key_set_loads(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: Callable[..., ServiceSettings]
) -> None:
    issuer.fault = Fault(status=503)  # the issuer is down when the service starts
    app = await start_service(make_service_settings(issuer.url))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        assert await _check(channel, "") == SERVING
        assert await _check(channel, SERVICE) == NOT_SERVING
        # Meanwhile SecureRoute cannot verify anything: UNAVAILABLE, not UNAUTHENTICATED.
        token = issuer.tokens.issue()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await secureroute_stub(channel).SecureRoute(  # type: ignore[no-untyped-call]
                secureroute_pb2.SecureRouteRequest(), metadata=[("authorization", f"Bearer {token}")]
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

        # Watch the service; when the issuer recovers, the status flips to SERVING by itself.
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        first = await asyncio.wait_for(watch.read(), WAIT_S)
        assert first.status == NOT_SERVING
        issuer.fault = Fault()
        second = await asyncio.wait_for(watch.read(), WAIT_S)
        assert second.status == SERVING
        watch.cancel()
        assert await _check(channel, SERVICE) == SERVING


async def test_stop_reports_not_serving_before_the_server_goes(
    service: SecureRouteServer, channel: grpc.aio.Channel
) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    watches = {name: stub.Watch(health_pb2.HealthCheckRequest(service=name)) for name in ("", SERVICE)}
    for watch in watches.values():
        assert (await asyncio.wait_for(watch.read(), WAIT_S)).status == SERVING
    stopping = asyncio.create_task(service.stop(grace_s=2))
    for watch in watches.values():
        assert (await asyncio.wait_for(watch.read(), WAIT_S)).status == NOT_SERVING
    await asyncio.wait_for(stopping, WAIT_S)


async def test_in_flight_call_finishes_within_the_grace_period(
    issuer: LoopbackIssuer, make_service_settings: Callable[..., ServiceSettings]
) -> None:
    app = build_server(make_service_settings(issuer.url))
    entered = asyncio.Event()

    async def slow(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        entered.set()
        await asyncio.sleep(1.0)
        return b"done"

    # A test-only slow method on the real server (added before start, as gRPC requires).
    app.server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.v1.Slow", {"Call": grpc.unary_unary_rpc_method_handler(slow)}
            ),
        )
    )
    await app.start()
    try:
        assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            token = issuer.tokens.issue()
            call = channel.unary_unary(
                "/test.v1.Slow/Call", request_serializer=None, response_deserializer=None
            )(b"", metadata=[("authorization", f"Bearer {token}")])
            await asyncio.wait_for(entered.wait(), WAIT_S)
            stopping = asyncio.create_task(app.stop(grace_s=10))
            assert await asyncio.wait_for(call, WAIT_S) == b"done"
            await asyncio.wait_for(stopping, WAIT_S)
    finally:
        await app.stop(0)
