"""DPoP across replicas of the service: ``dpop_replay_redis_url`` makes them share jwt_authn's Redis
replay store, so a proof accepted by one replica is refused by every other; without it each
process remembers only its own. Against a real ``redis-server`` (Debian's) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import secureroute_stub

from dev_stack.redis_server import RedisServer
from jwt_authn import replay_redis
from jwt_authn.dpop_client import DPoPKey
from jwt_authn.testing import LoopbackIssuer
from runtime.settings import SettingsError
from secureroute.v1 import secureroute_pb2
from service.health import DPOP_REPLAY_STORE
from service.server import SecureRouteServer, build_server

WAIT_S = 15.0
METHOD = "/secureroute.v1.SecureRouteService/SecureRoute"


@pytest.fixture
async def redis_url(redis: RedisServer) -> str:
    """The URL of a running redis-server of this test's own."""
    await redis.start()
    return redis.url


@pytest.fixture
def replicas(
    issuer: LoopbackIssuer,
    make_service_settings: Callable[..., Any],
    start_service: Callable[..., Awaitable[SecureRouteServer]],
) -> Callable[..., Awaitable[list[SecureRouteServer]]]:
    async def start(count: int, *flags: str) -> list[SecureRouteServer]:
        started = [await start_service(make_service_settings(issuer.url, *flags)) for _ in range(count)]
        for service in started:
            assert await service.authenticator.wait_ready(timeout_s=WAIT_S)
        return started

    return start


async def _call(service: SecureRouteServer, token: str, proof: str) -> str:
    """``ok``, or the refusal's details."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = secureroute_stub(channel)
        try:
            await stub.SecureRoute(
                secureroute_pb2.SecureRouteRequest(),
                metadata=(("authorization", f"DPoP {token}"), ("dpop", proof)),
                timeout=WAIT_S,
            )
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            return error.details() or ""
    return "ok"


def _bound(issuer: LoopbackIssuer) -> tuple[DPoPKey, str]:
    key = DPoPKey.generate()
    return key, issuer.tokens.issue(sub="erin", claims={"cnf": {"jkt": key.jkt}})


def _proof(key: DPoPKey, token: str, service: SecureRouteServer) -> str:
    # Without dpop_public_base_urls a replica checks the scheme and the path, not the authority
    # (Python's grpc does not tell it): one proof fits every replica, so replay is theirs to stop.
    return key.proof("POST", f"http://127.0.0.1:{service.port}{METHOD}", access_token=token)


async def test_replicas_sharing_redis_accept_a_proof_once_across_them(
    replicas: Callable[..., Awaitable[list[SecureRouteServer]]], issuer: LoopbackIssuer, redis_url: str
) -> None:
    first, second = await replicas(2, "--dpop-replay-redis-url", redis_url)
    key, token = _bound(issuer)
    proof = _proof(key, token, first)
    assert await _call(first, token, proof) == "ok"
    assert await _call(second, token, proof) == "dpop proof replayed"
    assert await _call(second, token, _proof(key, token, second)) == "ok"


async def test_without_redis_each_replica_remembers_only_its_own(
    replicas: Callable[..., Awaitable[list[SecureRouteServer]]], issuer: LoopbackIssuer
) -> None:
    """The control for the test above, and the reason for the setting."""
    first, second = await replicas(2)
    key, token = _bound(issuer)
    proof = _proof(key, token, first)
    assert await _call(first, token, proof) == "ok"
    assert await _call(first, token, proof) == "dpop proof replayed"
    assert await _call(second, token, proof) == "ok"


async def test_redis_down_refuses_dpop_calls_and_no_bearer_call(
    replicas: Callable[..., Awaitable[list[SecureRouteServer]]],
    issuer: LoopbackIssuer,
    unused_port: Callable[[], int],
) -> None:
    (service,) = await replicas(1, "--dpop-replay-redis-url", f"redis://127.0.0.1:{unused_port()}/0")
    key, token = _bound(issuer)
    assert await _call(service, token, _proof(key, token, service)) == "dpop replay store unavailable"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = secureroute_stub(channel)
        bearer = issuer.tokens.issue(sub="frank")
        reply = await stub.SecureRoute(
            secureroute_pb2.SecureRouteRequest(),
            metadata=(("authorization", f"Bearer {bearer}"),),
            timeout=WAIT_S,
        )
        assert reply.subject == "frank"


def test_the_redis_url_is_checked_at_start(make_service_settings: Callable[..., Any]) -> None:
    with pytest.raises(SettingsError, match=r"^dpop_replay_redis_url: must be a redis://"):
        make_service_settings("http://127.0.0.1:1", "--dpop-replay-redis-url", "http://127.0.0.1:6379")


def test_without_the_redis_package_the_setting_fails_at_start(
    make_service_settings: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As where the guard's redis extra is not installed (its import found no redis package)."""
    monkeypatch.setattr(replay_redis, "redis_asyncio", None)
    settings = make_service_settings("http://127.0.0.1:1", "--dpop-replay-redis-url", "redis://127.0.0.1:1/0")
    with pytest.raises(SettingsError, match=r"^dpop_replay_redis_url: .*pip install 'jwt-authn\[redis\]'"):
        build_server(settings)


async def _replay_store_health(service: SecureRouteServer, wanted: str) -> None:
    """Wait (bounded) until grpc.health.v1 reports ``dpop-replay-store`` as ``wanted``."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + WAIT_S
        while True:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=DPOP_REPLAY_STORE), timeout=WAIT_S)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            if status == wanted:
                return
            assert time.monotonic() < deadline, f"{DPOP_REPLAY_STORE} stayed {status}, wanted {wanted}"
            await asyncio.sleep(0.1)


async def test_the_health_status_follows_the_redis_store(
    replicas: Callable[..., Awaitable[list[SecureRouteServer]]], issuer: LoopbackIssuer, redis: RedisServer
) -> None:
    """What an operator sees: ``dpop-replay-store`` NOT_SERVING while Redis is down, SERVING when
    it is back; the service itself stays SERVING (Bearer calls go on)."""
    await redis.start()
    (service,) = await replicas(1, "--dpop-replay-redis-url", redis.url)
    key, token = _bound(issuer)
    await _replay_store_health(service, "SERVING")
    await redis.stop()
    await _replay_store_health(service, "NOT_SERVING")
    assert await _call(service, token, _proof(key, token, service)) == "dpop replay store unavailable"
    assert service.health.ready, "readiness does not follow the replay store"
    await redis.start()
    await _replay_store_health(service, "SERVING")
    assert await _call(service, token, _proof(key, token, service)) == "ok"
