"""The facade with its backend down: 503 at once, and recovery by itself when the service starts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from jwt_authn.testing import LoopbackIssuer
from service import SecureRouteServer, ServiceSettings

WAIT_S = 15.0

# A channel's outage and recovery: the in-process backend has neither (it lives and dies with
# the one program's gRPC server).
pytestmark = pytest.mark.parametrize("facade_backend", ["remote"])


async def test_backend_down_then_up(
    *,
    issuer: LoopbackIssuer,
    start_service: Callable[[ServiceSettings], Awaitable[SecureRouteServer]],
    start_facade: Callable[..., Awaitable[str]],
    make_service_settings: Callable[..., ServiceSettings],
    unused_port: Callable[[], int],
    http: aiohttp.ClientSession,
) -> None:
    port = unused_port()
    # A long deadline: the 503 must come from the refused connection, not from the deadline.
    url = await start_facade(f"127.0.0.1:{port}", timeout_s=60)
    for _ in range(3):  # and again while the channel is in backoff
        async with http.get(f"{url}/health", timeout=aiohttp.ClientTimeout(total=5)) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "5"
            assert "unavailable" in await response.text()

    app = await start_service(make_service_settings(issuer.url, listen=f"127.0.0.1:{port}"))
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    token = issuer.tokens.issue()
    statuses: list[int] = []
    for _ in range(int(WAIT_S / 0.25)):  # the channel reconnects within its 2 s backoff cap
        async with http.get(f"{url}/secure-route", headers={"Authorization": f"Bearer {token}"}) as response:
            statuses.append(response.status)
        if statuses[-1] == 200:
            break
        await asyncio.sleep(0.25)
    assert statuses[-1] == 200, statuses
    assert set(statuses) <= {200, 503}


async def test_backend_stops_then_returns(
    *,
    issuer: LoopbackIssuer,
    start_facade: Callable[..., Awaitable[str]],
    make_service_settings: Callable[..., ServiceSettings],
    unused_port: Callable[[], int],
    start_service: Callable[[ServiceSettings], Awaitable[SecureRouteServer]],
    http: aiohttp.ClientSession,
) -> None:
    port = unused_port()
    settings = make_service_settings(issuer.url, listen=f"127.0.0.1:{port}")
    first = await start_service(settings)
    url = await start_facade(f"127.0.0.1:{port}", timeout_s=60)
    async with http.get(f"{url}/health") as response:
        assert response.status == 200
    await first.stop(0)
    async with http.get(f"{url}/health", timeout=aiohttp.ClientTimeout(total=5)) as response:
        assert response.status == 503

    await start_service(settings)
    for _ in range(int(WAIT_S / 0.25)):
        async with http.get(f"{url}/health") as response:
            if response.status == 200:
                break
            assert response.status == 503
        await asyncio.sleep(0.25)
    else:
        raise AssertionError("the facade did not recover")
