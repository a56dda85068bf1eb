"""The tuned live stack of the fault tests and the few calls they make through it.

Usage:
    stack = await start_tuned_stack(issuer.url)
    code, details = await stack.grpc_call(token)
    status, headers = await stack.http_call(http, token)
    assert await stack.health() == "NOT_SERVING"
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import secureroute_stub

from jwt_authn.config import IssuerConfig
from jwt_authn.jwks import KeySetCache
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer

__all__ = ["FAST_TIMINGS", "WAIT_S", "TunedStack", "eventually"]

SECURE_ROUTE_SERVICE = "secureroute.v1.SecureRouteService"
#: Bound of every wait: far above any timing below, so only a real hang fails the test.
WAIT_S = 10.0
#: jwt_authn timings for tests: a fetch gives up after 0.5 s, retries start at 50 ms, and the
#: cooldown between on-demand refreshes is half a second. Periodic refresh stays long (10 min)
#: unless a test asks for it.
FAST_TIMINGS: dict[str, float] = {
    "fetch_timeout_s": 0.5,
    "cooldown_s": 0.5,
    "retry_initial_backoff_s": 0.05,
    "retry_max_backoff_s": 0.3,
}


@dataclass
class TunedStack:
    app: SecureRouteServer
    channel: grpc.aio.Channel
    facade_url: str
    issuer_config: IssuerConfig

    @property
    def key_set(self) -> KeySetCache:
        return self.app.authenticator.key_sets[self.issuer_config.issuer]

    async def grpc_call(self, token: str | None, *, timeout_s: float = WAIT_S) -> tuple[str, str | None]:
        stub = secureroute_stub(self.channel)
        metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
        try:
            await stub.SecureRoute(secureroute_pb2.SecureRouteRequest(), metadata=metadata, timeout=timeout_s)
        except grpc.aio.AioRpcError as err:
            return err.code().name, err.details()
        return "OK", None

    async def http_call(self, http: aiohttp.ClientSession, token: str | None) -> tuple[int, dict[str, str]]:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with http.get(f"{self.facade_url}/secure-route", headers=headers) as response:
            await response.read()
            return response.status, dict(response.headers)

    async def health(self, service: str = SECURE_ROUTE_SERVICE) -> str:
        stub = health_pb2_grpc.HealthStub(self.channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=WAIT_S)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def eventually(check: Callable[[], object], *, timeout_s: float = WAIT_S, what: str = "") -> None:
    """Poll ``check`` (sync or async) until it is truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what or check}")
        await asyncio.sleep(0.05)
