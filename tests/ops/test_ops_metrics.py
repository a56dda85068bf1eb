"""Prometheus metrics: the service's and the facade's metrics ports, read as Prometheus would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import grpc
from helpers import secureroute_stub
from prometheus_client.parser import text_string_to_metric_families

from http_facade import FacadeSettings
from http_facade.runner import FacadeServer
from jwt_authn.testing import Fault, LoopbackIssuer
from runtime.listen import ListenAddress
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer, ServiceSettings

WAIT_S = 15.0
StartService = Callable[[ServiceSettings], Awaitable[SecureRouteServer]]
METHOD = "/secureroute.v1.SecureRouteService/SecureRoute"


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def _scrape(
    http: aiohttp.ClientSession, url: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return _samples(await response.text())


async def _ready_with_metrics(
    issuer: LoopbackIssuer, start_service: StartService, make_service_settings: Callable[..., ServiceSettings]
) -> SecureRouteServer:
    """A service with its metrics port on, once its key set is loaded."""
    app = await start_service(make_service_settings(issuer.url, "--metrics-listen", "127.0.0.1:0"))
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    return app


async def test_service_metrics_port(
    issuer: LoopbackIssuer,
    start_service: StartService,
    make_service_settings: Callable[..., ServiceSettings],
    http: aiohttp.ClientSession,
) -> None:
    app = await _ready_with_metrics(issuer, start_service, make_service_settings)
    assert app.metrics_port
    token = issuer.tokens.issue()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        stub = secureroute_stub(channel)
        for _ in range(3):  # one verification, then two cache hits
            await stub.SecureRoute(
                secureroute_pb2.SecureRouteRequest(), metadata=[("authorization", f"Bearer {token}")]
            )
        calls: list[tuple[list[tuple[str, str]], grpc.StatusCode]] = [
            ([], grpc.StatusCode.UNAUTHENTICATED),  # missing
            ([("authorization", "Bearer not-a-jwt")], grpc.StatusCode.UNAUTHENTICATED),  # malformed
            (
                [("authorization", f"Bearer {issuer.tokens.issue(ttl_s=-600)}")],
                grpc.StatusCode.UNAUTHENTICATED,
            ),
            (
                [("authorization", f"Bearer {issuer.tokens.issue(aud='other')}")],
                grpc.StatusCode.UNAUTHENTICATED,
            ),
            ([("authorization", f"Bearer {token[:-6]}AAAAAA")], grpc.StatusCode.UNAUTHENTICATED),  # signature
        ]
        for metadata, code in calls:
            try:
                await stub.SecureRoute(secureroute_pb2.SecureRouteRequest(), metadata=metadata)
            except grpc.aio.AioRpcError as err:
                assert err.code() == code
        await stub.Health(secureroute_pb2.HealthRequest())
        unknown = channel.unary_unary(
            "/no.such.Service/Call", request_serializer=None, response_deserializer=None
        )
        try:
            await unknown(b"")
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.UNIMPLEMENTED

    samples = await _scrape(http, f"http://127.0.0.1:{app.metrics_port}/metrics")
    requests = "secureroute_grpc_requests_total"
    assert _value(samples, requests, method=METHOD, code="OK") == 3
    assert _value(samples, requests, method=METHOD, code="UNAUTHENTICATED") == 5
    assert _value(samples, requests, method="/secureroute.v1.SecureRouteService/Health", code="OK") == 1
    assert _value(samples, requests, method="unknown", code="UNIMPLEMENTED") == 1
    assert _value(samples, "secureroute_grpc_request_duration_seconds_count", method=METHOD) == 8
    outcomes = "jwt_authn_authentications_total"
    assert _value(samples, outcomes, outcome="ok") == 3
    for reason in (
        "missing_token",
        "malformed_token",
        "token_expired",
        "audience_mismatch",
        "invalid_signature",
    ):
        assert _value(samples, outcomes, outcome=reason) == 1, reason
    assert _value(samples, "jwt_authn_token_cache_hits_total") == 2
    assert _value(samples, "jwt_authn_token_cache_misses_total") >= 1
    assert _value(samples, "jwt_authn_jwks_refreshes_total", issuer=issuer.url, result="success") >= 1
    assert _value(samples, "jwt_authn_jwks_keys", issuer=issuer.url) == 1
    assert 0 <= _value(samples, "jwt_authn_jwks_age_seconds", issuer=issuer.url) < 60
    assert ("process_cpu_seconds_total", frozenset()) in samples


async def test_interleaved_accepted_and_rejected_calls_are_each_counted_under_their_method(
    issuer: LoopbackIssuer,
    start_service: StartService,
    make_service_settings: Callable[..., ServiceSettings],
    http: aiohttp.ClientSession,
) -> None:
    # The observing interceptor keeps one wrapped handler per method and rewraps when jwt_authn
    # hands it a rejecting handler instead: every switch must still land on the right counters.
    app = await _ready_with_metrics(issuer, start_service, make_service_settings)
    good = [("authorization", f"Bearer {issuer.tokens.issue()}")]
    sequence = ["ok", "rejected", "ok", "health", "rejected", "rejected", "ok", "health", "ok"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        stub = secureroute_stub(channel)
        for step in sequence:
            if step == "health":
                await stub.Health(secureroute_pb2.HealthRequest())
                continue
            try:
                await stub.SecureRoute(
                    secureroute_pb2.SecureRouteRequest(), metadata=good if step == "ok" else []
                )
                assert step == "ok"
            except grpc.aio.AioRpcError as err:
                assert (step, err.code()) == ("rejected", grpc.StatusCode.UNAUTHENTICATED)
    samples = await _scrape(http, f"http://127.0.0.1:{app.metrics_port}/metrics")
    requests = "secureroute_grpc_requests_total"
    assert _value(samples, requests, method=METHOD, code="OK") == sequence.count("ok")
    assert _value(samples, requests, method=METHOD, code="UNAUTHENTICATED") == sequence.count("rejected")
    health = "/secureroute.v1.SecureRouteService/Health"
    assert _value(samples, requests, method=health, code="OK") == sequence.count("health")
    durations = "secureroute_grpc_request_duration_seconds_count"
    assert _value(samples, durations, method=METHOD) == sequence.count("ok") + sequence.count("rejected")


async def test_key_set_failures_are_counted(
    issuer: LoopbackIssuer,
    start_service: StartService,
    make_service_settings: Callable[..., ServiceSettings],
    http: aiohttp.ClientSession,
) -> None:
    issuer.fault = Fault(status=500)
    app = await start_service(make_service_settings(issuer.url, "--metrics-listen", "127.0.0.1:0"))
    for _ in range(int(WAIT_S / 0.1)):
        samples = await _scrape(http, f"http://127.0.0.1:{app.metrics_port}/metrics")
        if _value(samples, "jwt_authn_jwks_refreshes_total", issuer=issuer.url, result="failure") >= 1:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("no failed refresh was counted")
    assert _value(samples, "jwt_authn_jwks_keys", issuer=issuer.url) == 0
    assert ("jwt_authn_jwks_age_seconds", frozenset({("issuer", issuer.url)})) not in samples  # never loaded


@asynccontextmanager
async def _facade(*flags: str) -> AsyncIterator[FacadeServer]:
    settings = FacadeSettings.load(["--listen", "127.0.0.1:0", *flags], environ={})
    server = FacadeServer(settings, shutdown_timeout_s=0.5)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_facade_metrics(
    issuer: LoopbackIssuer, service: SecureRouteServer, http: aiohttp.ClientSession
) -> None:
    async with _facade("--backend", f"127.0.0.1:{service.port}", "--metrics-listen", "127.0.0.1:0") as facade:
        await _facade_metrics_after_traffic(issuer, facade, http)


async def _facade_metrics_after_traffic(
    issuer: LoopbackIssuer, facade: FacadeServer, http: aiohttp.ClientSession
) -> None:
    url = facade.url()
    # Only on the metrics listener, never on the public port.
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 404
    token = issuer.tokens.issue()
    async with http.get(f"{url}/secure-route", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
    for path in ("/secure-route", "/health", "/no/such/page"):
        async with http.get(f"{url}{path}"):
            pass
    async with http.post(f"{url}/health"):
        pass
    samples = await _scrape(http, f"http://127.0.0.1:{facade.metrics_port}/metrics")
    requests = "secureroute_http_requests_total"
    assert _value(samples, requests, method="GET", route="/secure-route", code="200") == 1
    assert _value(samples, requests, method="GET", route="/secure-route", code="401") == 1
    assert _value(samples, requests, method="GET", route="/health", code="200") == 1
    assert _value(samples, requests, method="GET", route="unmatched", code="404") == 2
    assert _value(samples, requests, method="POST", route="unmatched", code="405") == 1
    duration = "secureroute_http_request_duration_seconds_count"
    assert _value(samples, duration, method="GET", route="/secure-route") == 2


async def test_facade_metrics_can_be_turned_off(
    service: SecureRouteServer, http: aiohttp.ClientSession
) -> None:
    async with _facade("--backend", f"127.0.0.1:{service.port}", "--metrics-listen", "off") as facade:
        assert facade.metrics_port is None
        async with http.get(f"{facade.url()}/metrics") as response:
            assert response.status == 404


def test_facade_metrics_default_to_loopback() -> None:
    settings = FacadeSettings.load([], environ={})
    assert settings.http.metrics_listen == ListenAddress("127.0.0.1", 9465)
