"""One client cannot fill the anonymous pool whatever it sends; many clients together still cannot
starve token holders (``service.admission``: per connection, per peer address, then the pools).

A client "from 127.0.0.2" is a gRPC channel to a loopback forwarder (``tools.loopback_source``) that
connects on to the service from that source address (all of 127.0.0.0/8 is loopback), so the
service sees it as that peer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import secureroute_stub

from jwt_authn.testing import LoopbackIssuer
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer, ServiceSettings
from service.admission import CLIENT_LIMIT_DETAILS, POOL_FULL_DETAILS
from tools.loopback_source import SourceForwarder

StartService = Callable[[ServiceSettings], Awaitable[SecureRouteServer]]
MakeSettings = Callable[..., ServiceSettings]
WAIT_S = 15.0
CHECK = "/grpc.health.v1.Health/Check"


@contextlib.asynccontextmanager
async def _from_address(source: str, port: int) -> AsyncIterator[str]:
    """A loopback target whose connections reach 127.0.0.1:``port`` from ``source`` (127.x.y.z)."""
    async with SourceForwarder(source, target_port=port) as forwarder:
        yield f"127.0.0.1:{forwarder.port}"


async def _silent_checks(channel: grpc.aio.Channel, count: int) -> list[Any]:
    """``count`` health Checks on ``channel`` whose request message never comes, each started."""
    await asyncio.wait_for(channel.channel_ready(), WAIT_S)
    calls = [channel.stream_stream(CHECK)() for _ in range(count)]
    for call in calls:
        await asyncio.wait_for(call.wait_for_connection(), WAIT_S)
    return calls


async def _refusals(calls: list[Any]) -> list[str]:
    """The details of the calls already answered RESOURCE_EXHAUSTED (the others stay open)."""
    await asyncio.sleep(0.2)  # refusals are answered at once; give them time to arrive
    return [await call.details() for call in calls if call.done()]


async def _settle(app: SecureRouteServer, unary: int) -> None:
    async with asyncio.timeout(WAIT_S):
        while app.admission.unary.active != unary:  # noqa: ASYNC110  # a plain counter
            await asyncio.sleep(0.01)


async def _outcomes(count: int, call: Callable[[], Awaitable[object]]) -> list[str]:
    results = []
    for _ in range(count):
        try:
            await call()
            results.append("OK")
        except grpc.aio.AioRpcError as error:
            results.append(error.code().name)
    return results


async def test_one_client_s_silent_flood_leaves_other_clients_and_token_holders_at_100_percent(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    # Without the per-client limit, 60 silent calls would fill the 40 places of the unary pool.
    app = await start_service(
        make_service_settings(issuer.url, "--max-anonymous-rpcs", "40", "--request-message-timeout-s", "600")
    )
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    token = issuer.tokens.issue(sub="alice")
    async with (
        _from_address("127.0.0.2", app.port) as flooder_target,
        grpc.aio.insecure_channel(flooder_target) as flooder,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as other,
    ):
        flood = await _silent_checks(flooder, 60)
        await _settle(app, 32)  # the default max_anonymous_per_connection
        assert await _refusals(flood) == [CLIENT_LIMIT_DETAILS] * 28
        assert app.admission.clients.by_address == {"ipv4:127.0.0.2": 32}

        health = secureroute_stub(other)
        checks = health_pb2_grpc.HealthStub(other)
        metadata = (("authorization", f"Bearer {token}"),)
        assert (
            await _outcomes(20, lambda: health.Health(secureroute_pb2.HealthRequest(), timeout=WAIT_S))
            == ["OK"] * 20
        )
        assert (
            await _outcomes(
                20, lambda: checks.Check(health_pb2.HealthCheckRequest(service=""), timeout=WAIT_S)
            )
            == ["OK"] * 20
        )
        assert (
            await _outcomes(
                20,
                lambda: health.SecureRoute(
                    secureroute_pb2.SecureRouteRequest(), metadata=metadata, timeout=WAIT_S
                ),
            )
            == ["OK"] * 20
        )
        for call in flood:
            call.cancel()
    await _settle(app, 0)
    assert app.admission.clients.by_connection == app.admission.clients.by_address == {}


async def test_the_limits_are_per_connection_and_per_address(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    app = await start_service(
        make_service_settings(
            issuer.url,
            "--max-anonymous-per-connection",
            "5",
            "--max-anonymous-per-address",
            "8",
            "--request-message-timeout-s",
            "600",
        )
    )
    async with (
        _from_address("127.0.0.2", app.port) as first_target,
        _from_address("127.0.0.3", app.port) as elsewhere_target,
        grpc.aio.insecure_channel(first_target) as first,
        # Another connection from the same address (grpc shares a connection per target and options).
        grpc.aio.insecure_channel(first_target, options=[("grpc.primary_user_agent", "second")]) as second,
        grpc.aio.insecure_channel(elsewhere_target) as elsewhere,
    ):
        calls = await _silent_checks(first, 6)
        assert await _refusals(calls) == [CLIENT_LIMIT_DETAILS]  # the connection's 5
        more = await _silent_checks(second, 4)
        assert await _refusals(more) == [CLIENT_LIMIT_DETAILS]  # the address's 8
        other = await _silent_checks(elsewhere, 5)
        assert await _refusals(other) == []  # another address has its own
        await _settle(app, 13)
        for call in (*calls, *more, *other):
            call.cancel()
    await _settle(app, 0)


async def test_a_flood_from_many_addresses_meets_the_pool_and_token_holders_stay_at_100_percent(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: MakeSettings
) -> None:
    # 10 addresses x 5 silent calls = 50: past the pool of 20, and without it past the 40 calls
    # the server takes at once, which would leave token holders nothing.
    app = await start_service(
        make_service_settings(
            issuer.url,
            "--max-concurrent-rpcs",
            "40",
            "--max-anonymous-rpcs",
            "20",
            "--max-anonymous-streams",
            "10",
            "--max-anonymous-per-address",
            "5",
            "--request-message-timeout-s",
            "600",
        )
    )
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    token = issuer.tokens.issue(sub="alice")
    async with contextlib.AsyncExitStack() as stack:
        flood: list[Any] = []
        for last in range(2, 12):
            target = await stack.enter_async_context(_from_address(f"127.0.0.{last}", app.port))
            channel = await stack.enter_async_context(grpc.aio.insecure_channel(target))
            flood += await _silent_checks(channel, 5)
        await _settle(app, 20)
        refusals = await _refusals(flood)
        assert len(refusals) == 30 and set(refusals) == {POOL_FULL_DETAILS}
        holder = await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{app.port}"))
        stub = secureroute_stub(holder)
        metadata = (("authorization", f"Bearer {token}"),)

        async def secure_route() -> object:
            return await stub.SecureRoute(
                secureroute_pb2.SecureRouteRequest(), metadata=metadata, timeout=WAIT_S
            )

        results = await asyncio.gather(*(_outcomes(5, secure_route) for _ in range(8)))
        assert [outcome for batch in results for outcome in batch] == ["OK"] * 40
        for call in flood:
            call.cancel()
    await _settle(app, 0)
