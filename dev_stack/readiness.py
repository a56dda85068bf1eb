"""Is each part of the stack ready? Bounded probes, and a loop that gives up when a child dies.

Ready means useful, not merely listening: the issuer serves its discovery document, the
service reports ``secureroute.v1.SecureRouteService`` SERVING on ``grpc.health.v1`` (it does so
once it has loaded the issuer's keys), and the facade answers ``/health`` with ``Healthy``; the
one program is ready when both its listeners are.

Usage:
    await wait_ready("issuer", issuer_ready(config.issuer_url), child, deadline_s=60)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dev_stack.children import Child, ChildExited

__all__ = [
    "NotReady",
    "all_ready",
    "facade_ready",
    "issuer_ready",
    "service_ready",
    "wait_ready",
]

Probe = Callable[[], Awaitable[bool]]
_PROBE_TIMEOUT_S = 2.0
_SERVICE_NAME = "secureroute.v1.SecureRouteService"


class NotReady(Exception):
    """A part did not become ready in time."""


def _http_probe(url: str, accepts: Callable[[aiohttp.ClientResponse], Awaitable[bool]]) -> Probe:
    """Ready when ``GET url`` answers 200 and ``accepts`` the response."""

    async def probe() -> bool:
        timeout = aiohttp.ClientTimeout(total=_PROBE_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            return response.status == 200 and await accepts(response)

    return probe


def issuer_ready(issuer_url: str) -> Probe:
    async def is_our_issuer(response: aiohttp.ClientResponse) -> bool:
        # Someone else's server on the port would answer too: check that it is our issuer.
        return bool((await response.json()).get("issuer") == issuer_url)

    return _http_probe(f"{issuer_url}/.well-known/openid-configuration", is_our_issuer)


def service_ready(address: str) -> Probe:
    async def probe() -> bool:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            answer = await stub.Check(
                health_pb2.HealthCheckRequest(service=_SERVICE_NAME), timeout=_PROBE_TIMEOUT_S
            )
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    return probe


def facade_ready(http_url: str) -> Probe:
    async def is_healthy(response: aiohttp.ClientResponse) -> bool:
        return (await response.text()).strip() == "Healthy"

    return _http_probe(f"{http_url}/health", is_healthy)


def all_ready(*probes: Probe) -> Probe:
    """Ready when every probe says yes (the one program: its gRPC and its HTTP listener)."""

    async def probe() -> bool:
        for each in probes:
            if not await each():
                return False
        return True

    return probe


async def wait_ready(name: str, probe: Probe, children: Sequence[Child], *, deadline_s: float) -> None:
    """Poll ``probe`` until it says yes; raise ChildExited or NotReady otherwise."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + deadline_s
    delay_s = 0.05
    while True:
        for child in children:
            if (code := child.returncode) is not None:
                raise ChildExited(child.name, code)
        try:
            if await probe():
                return
        except (aiohttp.ClientError, grpc.RpcError, TimeoutError, OSError, ValueError):
            pass  # not listening yet, or not answering properly yet
        if loop.time() >= give_up_at:
            raise NotReady(f"{name} was not ready within {deadline_s:g} s")
        await asyncio.sleep(delay_s)
        delay_s = min(delay_s * 2, 0.5)
