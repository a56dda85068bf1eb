"""A programmable stand-in for the service: a real grpc.aio server whose handlers do what a test says.

Used where the real service cannot be made to answer a given status (every row of the status
table, a slow backend, trailers of our choosing). It records the metadata each call carried.

Also: ``facade_backend`` parametrizes the whole facade suite over both backends.

Usage:
    async def test_x(stub_backend: StubBackend, start_facade) -> None:
        stub_backend.behave = abort_with(grpc.StatusCode.NOT_FOUND, "no such thing")
        url = await start_facade(stub_backend.target)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

Behaviour = Callable[[grpc.aio.ServicerContext[Any, Any]], Awaitable[None]]


async def _answer(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    return None


class StubBackend(secureroute_pb2_grpc.SecureRouteServiceServicer):
    def __init__(self) -> None:
        #: Runs first in every handler: may sleep, abort, or set trailers.
        self.behave: Behaviour = _answer
        self.metadata: list[dict[str, str]] = []
        self.target = ""

    async def Health(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self.metadata.append(dict(context.invocation_metadata() or ()))
        await self.behave(context)
        return secureroute_pb2.HealthResponse(message="Healthy")

    async def SecureRoute(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        self.metadata.append(dict(context.invocation_metadata() or ()))
        await self.behave(context)
        return secureroute_pb2.SecureRouteResponse(message="Super secret stuff", subject="stub")


@pytest.fixture(params=["remote", "in_process"])
def facade_backend(request: pytest.FixtureRequest) -> str:
    """Every facade test runs against both backends: the remote one (a gRPC channel to the
    service) and the one program's (the guard's aiohttp middleware on the service's Authenticator,
    the service's domain code in this process). A stub's gRPC statuses are remote-only cases."""
    return str(request.param)


@pytest.fixture
async def stub_backend() -> AsyncIterator[StubBackend]:
    backend = StubBackend()
    server = grpc.aio.server()
    secureroute_pb2_grpc.add_SecureRouteServiceServicer_to_server(backend, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    backend.target = f"127.0.0.1:{port}"
    await server.start()
    yield backend
    await server.stop(0)
