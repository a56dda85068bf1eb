"""One live stack for the whole hostile corpus: a trusted issuer (every algorithm), an
attacker's issuer, the gRPC service and the facade, all real and on loopback.

Module scoped (one event loop for the module): ~400 requests against one stack, instead of
~400 stacks. The service is built from its real settings, so it runs with its defaults
(the corpus tests the service as deployed, not a tuned copy).

Usage:
    pytestmark = pytest.mark.asyncio(loop_scope="module")

    async def test_x(hostile_stack: HostileStack) -> None: ...
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import grpc
import pytest_asyncio
from corpus import AUDIENCE, Context
from grpc_health.v1 import health_pb2_grpc
from helpers import secureroute_stub

from http_facade import FacadeSettings
from http_facade.runner import FacadeServer
from jwt_authn import DEFAULT_ALGORITHMS
from jwt_authn.testing import LoopbackIssuer
from secureroute.v1 import secureroute_pb2_grpc
from service import SecureRouteServer, ServiceSettings, build_server

WAIT_S = 15.0


@dataclass
class HostileStack:
    issuer: LoopbackIssuer
    attacker: LoopbackIssuer
    service: SecureRouteServer
    facade_url: str
    stub: secureroute_pb2_grpc.SecureRouteServiceStub
    health: health_pb2_grpc.HealthStub
    http: aiohttp.ClientSession
    started_at: float

    def context(self) -> Context:
        return Context(issuer=self.issuer, attacker=self.attacker)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hostile_stack() -> AsyncIterator[HostileStack]:
    async with (
        LoopbackIssuer(algorithms=DEFAULT_ALGORITHMS, audience=AUDIENCE) as issuer,
        LoopbackIssuer(algorithms=("RS256", "ES256"), audience=AUDIENCE) as attacker,
    ):
        settings = ServiceSettings.load(
            [
                "--listen",
                "127.0.0.1:0",
                "--issuer",
                issuer.url,
                "--audiences",
                AUDIENCE,
                "--grace-period-s",
                "1",
                "--metrics-listen",  # 9464 may be anyone's on a shared machine
                "off",
            ],
            environ={},
        )
        service = build_server(settings)
        await service.start()
        facade: FacadeServer | None = None
        try:
            assert await service.authenticator.wait_ready(timeout_s=WAIT_S)
            facade_settings = FacadeSettings.load(
                [
                    "--listen",
                    "127.0.0.1:0",
                    "--backend",
                    f"127.0.0.1:{service.port}",
                    "--metrics-listen",
                    "off",
                ],
                environ={},
            )
            # The server `python -m http_facade` uses (its parser errors never quote the request).
            facade = FacadeServer(facade_settings, shutdown_timeout_s=0.5)
            await facade.start()
            async with (
                grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel,
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as http,
            ):
                yield HostileStack(
                    issuer=issuer,
                    attacker=attacker,
                    service=service,
                    facade_url=facade.url(),
                    stub=secureroute_stub(channel),  # type: ignore[no-untyped-call]
                    health=health_pb2_grpc.HealthStub(channel),
                    http=http,
                    started_at=time.monotonic(),
                )
        finally:
            if facade is not None:
                await facade.stop()
            await service.stop(0, drain_delay_s=0)  # nobody left to drain for
