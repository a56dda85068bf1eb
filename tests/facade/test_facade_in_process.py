"""What only the one program's backend can show: no socket, the service's own guard, and one set of
metrics; plus what both backends must answer alike where a stub cannot stand in (keys not loaded).

The rest of the facade suite runs against both backends (tests/facade/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from http_facade.backend import LocalBackend
from http_facade.metrics import FacadeMetrics
from http_facade.runner import FacadeServer
from jwt_authn import Principal
from jwt_authn.dpop_client import DPoPKey, dpop_headers, dpop_request
from jwt_authn.testing import Fault, LoopbackIssuer
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer, ServiceSettings
from service.handlers import SecureRouteCalls

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
async def test_the_guards_outcomes_count_in_the_services_metrics(
    service: SecureRouteServer, facade_url: str, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{facade_url}/secure-route") as response:
        assert response.status == 401
    exposition = service.metrics.exposition().decode()
    assert 'jwt_authn_authentications_total{outcome="missing_token"} 1.0' in exposition


async def test_the_http_series_join_the_services_registry(
    service: SecureRouteServer, http: aiohttp.ClientSession, make_facade_settings: Callable[..., object]
) -> None:
    metrics = FacadeMetrics(registry=service.metrics.registry)
    facade = FacadeServer(
        make_facade_settings(),  # type: ignore[arg-type]
        backend=LocalBackend(SecureRouteCalls(), service.authenticator),
        metrics=metrics,
        shutdown_timeout_s=0.5,
    )
    await facade.start()
    try:
        async with http.get(f"{facade.url()}/secure-route") as response:
            assert response.status == 401
        assert facade.metrics_port is None  # the one program's listener is the service's
    finally:
        await facade.stop()
    exposition = service.metrics.exposition().decode()
    assert 'secureroute_http_requests_total{code="401",method="GET",route="/secure-route"} 1.0' in exposition
    assert 'jwt_authn_authentications_total{outcome="missing_token"} 1.0' in exposition


class _SlowCalls(SecureRouteCalls):
    async def secure_route(self, principal: Principal) -> secureroute_pb2.SecureRouteResponse:
        await asyncio.sleep(5)
        return await super().secure_route(principal)


async def test_the_deadline_is_a_504_in_the_one_program_too(
    service: SecureRouteServer,
    issuer: LoopbackIssuer,
    http: aiohttp.ClientSession,
    make_facade_settings: Callable[..., object],
) -> None:
    facade = FacadeServer(
        make_facade_settings("--backend-timeout-s", "0.3"),  # type: ignore[arg-type]
        backend=LocalBackend(_SlowCalls(), service.authenticator),
        shutdown_timeout_s=0.5,
    )
    await facade.start()
    headers = {"Authorization": f"Bearer {issuer.tokens.issue()}", "Accept": "application/json"}
    try:
        async with http.get(f"{facade.url()}/secure-route", headers=headers) as response:
            assert response.status == 504
            assert await response.json() == {
                "error": "deadline_exceeded",
                "message": "the backend did not answer in time",
            }
    finally:
        await facade.stop()


async def test_before_the_keys_load_a_token_is_503_with_retry_after_and_health_answers(
    issuer: LoopbackIssuer,
    start_service: Callable[[ServiceSettings], Awaitable[SecureRouteServer]],
    make_service_settings: Callable[..., ServiceSettings],
    start_facade: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    token = issuer.tokens.issue()
    issuer.fault = Fault(status=500)  # the key set never loads
    service = await start_service(make_service_settings(issuer.url))
    url = await start_facade(f"127.0.0.1:{service.port}")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    async with http.get(f"{url}/secure-route", headers=headers) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["error"] == "unavailable"
    async with http.get(f"{url}/health") as response:
        assert response.status == 200


@in_process
async def test_dpop_over_http_is_the_guards_own_aiohttp_middleware(
    service: SecureRouteServer, facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    """The one program's HTTP routes check DPoP themselves (RFC 9449): the proof names the URL the
    client called, with no forwarding and no proxy to trust."""
    key = DPoPKey.generate()
    token = issuer.tokens.issue(sub="dora", claims={"cnf": {"jkt": key.jkt}})
    json = {"Accept": "application/json"}
    async with await dpop_request(
        http, "GET", f"{facade_url}/secure-route", key=key, access_token=token, headers=json
    ) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["subject"] == "dora"
    headers = dpop_headers(key, token, "GET", f"{facade_url}/secure-route")
    statuses = []
    for _ in range(2):  # the same proof twice: a replay
        async with http.get(f"{facade_url}/secure-route", headers=headers) as response:
            statuses.append(response.status)
    assert statuses == [200, 401]
    async with http.get(
        f"{facade_url}/secure-route", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 401  # a bound token is never a bearer token
        assert "DPoP" in response.headers["WWW-Authenticate"]
