"""What only the in-process backend can show: no socket, and the service's own guard, pools and metrics.

The rest of the facade suite runs against both backends (tests/facade/conftest.py).
"""

from __future__ import annotations

import aiohttp
import grpc
import pytest

from jwt_authn.principal import principal_var
from jwt_authn.testing import LoopbackIssuer
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer

in_process = pytest.mark.parametrize("facade_backend", ["in_process"])


@in_process
async def test_answers_without_the_grpc_listener(
    service: SecureRouteServer, facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    await service.server.stop(0)  # nothing listens on the service's port any more
    headers = {"Authorization": f"Bearer {issuer.tokens.issue(sub='carol')}"}
    async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
        assert response.status == 200
    async with http.get(f"{facade_url}/secure-route") as response:
        assert response.status == 401  # the guard still runs


@in_process
async def test_calls_count_in_the_service_metrics(
    service: SecureRouteServer, facade_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{facade_url}/secure-route") as response:
        assert response.status == 401
    exposition = service.metrics.exposition().decode()
    assert 'method="/secureroute.v1.SecureRouteService/SecureRoute"' in exposition
    assert "UNAUTHENTICATED" in exposition


@in_process
async def test_anonymous_pool_is_the_services(
    service: SecureRouteServer, facade_url: str, http: aiohttp.ClientSession
) -> None:
    service.admission.unary.limit = 0  # every anonymous unary call is refused, as over gRPC
    async with http.get(f"{facade_url}/health") as response:
        assert response.status == 429
        assert response.headers["Retry-After"]


async def test_unknown_method_is_unimplemented(service: SecureRouteServer) -> None:
    method = service.in_process_channel().unary_unary("/secureroute.v1.SecureRouteService/Nope")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await method(secureroute_pb2.HealthRequest(), timeout=1.0)
    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_principal_does_not_leak_into_the_caller(
    service: SecureRouteServer, issuer: LoopbackIssuer
) -> None:
    method = service.in_process_channel().unary_unary("/secureroute.v1.SecureRouteService/SecureRoute")
    reply = await method(
        secureroute_pb2.SecureRouteRequest(),
        timeout=1.0,
        metadata=[("authorization", f"Bearer {issuer.tokens.issue(sub='alice')}")],
    )
    assert reply.subject == "alice"
    assert principal_var.get() is None
