"""TLS everywhere it can be: the gRPC server (and mutual TLS), the facade's HTTPS listener, and the
facade's channel to the service, with certificates made by the tests. Failures included: a
client that trusts another CA, an expired server certificate, a missing client certificate.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import fetch

from jwt_authn.testing import LoopbackIssuer
from service import SecureRouteServer, ServiceSettings

WAIT_S = 15.0
StartService = Callable[[ServiceSettings], Awaitable[SecureRouteServer]]
ServeFacade = Callable[..., Coroutine[Any, Any, str]]


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


StartTlsService = Callable[..., Awaitable[SecureRouteServer]]


@pytest.fixture
def start_tls_service(
    issuer: LoopbackIssuer,
    start_service: StartService,
    make_service_settings: Callable[..., ServiceSettings],
) -> StartTlsService:
    """``await start_tls_service(cert, key, *flags)``: the service serving TLS with that pair, ready."""

    async def start(cert: str, key: str, *flags: str) -> SecureRouteServer:
        settings = make_service_settings(issuer.url, "--tls-cert", cert, "--tls-key", key, *flags)
        app = await start_service(settings)
        assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
        return app

    return start


async def _assert_handshake_fails(target: str, credentials: grpc.ChannelCredentials) -> None:
    """A gRPC client with these credentials cannot call ``target``: UNAVAILABLE."""
    async with grpc.aio.secure_channel(target, credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_facade_talks_tls_to_the_service(
    *,
    pki: Any,
    issuer: LoopbackIssuer,
    start_tls_service: StartTlsService,
    serve_facade: ServeFacade,
    http: aiohttp.ClientSession,
) -> None:
    app = await start_tls_service(pki.server_cert, pki.server_key)
    url = await serve_facade(
        "--backend", f"127.0.0.1:{app.port}", "--backend-tls", "--backend-ca", pki.ca_cert
    )
    assert (await fetch(http, f"{url}/secure-route", issuer.tokens.issue(sub="tls")))[:2] == (
        200,
        "Super secret stuff",
    )
    # The name in the certificate may differ from the target's host: localhost is in the SAN.
    url = await serve_facade(
        "--backend", f"127.0.0.1:{app.port}", "--backend-tls", "--backend-ca", pki.ca_cert,
        "--backend-server-name", "localhost",
    )  # fmt: skip
    assert (await fetch(http, f"{url}/health"))[0] == 200
    # A plaintext client gets nowhere.
    url = await serve_facade("--backend", f"127.0.0.1:{app.port}")
    assert (await fetch(http, f"{url}/health"))[0] == 503


async def test_a_client_trusting_another_ca_fails(
    *,
    pki: Any,
    start_tls_service: StartTlsService,
    serve_facade: ServeFacade,
    http: aiohttp.ClientSession,
) -> None:
    app = await start_tls_service(pki.server_cert, pki.server_key)
    credentials = grpc.ssl_channel_credentials(root_certificates=_read(pki.other_ca_cert))
    await _assert_handshake_fails(f"127.0.0.1:{app.port}", credentials)
    url = await serve_facade(
        "--backend", f"127.0.0.1:{app.port}", "--backend-tls", "--backend-ca", pki.other_ca_cert
    )
    status, text, _ = await fetch(http, f"{url}/health")
    assert status == 503 and "unavailable" in text


async def test_an_expired_server_certificate_is_a_503(
    *,
    pki: Any,
    issuer: LoopbackIssuer,
    start_tls_service: StartTlsService,
    serve_facade: ServeFacade,
    http: aiohttp.ClientSession,
) -> None:
    app = await start_tls_service(pki.expired_cert, pki.expired_key)
    url = await serve_facade(
        "--backend", f"127.0.0.1:{app.port}", "--backend-tls", "--backend-ca", pki.ca_cert
    )
    status, _, _ = await fetch(http, f"{url}/secure-route", issuer.tokens.issue())
    assert status == 503


async def test_mutual_tls(
    *,
    pki: Any,
    issuer: LoopbackIssuer,
    start_tls_service: StartTlsService,
    serve_facade: ServeFacade,
    http: aiohttp.ClientSession,
) -> None:
    app = await start_tls_service(pki.server_cert, pki.server_key, "--tls-client-ca", pki.ca_cert)
    target = f"127.0.0.1:{app.port}"
    tls = ("--backend", target, "--backend-tls", "--backend-ca", pki.ca_cert)
    with_cert = await serve_facade(
        *tls, "--backend-client-cert", pki.client_cert, "--backend-client-key", pki.client_key
    )
    assert (await fetch(http, f"{with_cert}/secure-route", issuer.tokens.issue()))[:2] == (
        200,
        "Super secret stuff",
    )

    without_cert = await serve_facade(*tls)
    assert (await fetch(http, f"{without_cert}/health"))[0] == 503

    # A certificate from another CA is no better than none.
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(pki.ca_cert),
        private_key=_read(pki.other_client_key),
        certificate_chain=_read(pki.other_client_cert),
    )
    await _assert_handshake_fails(target, credentials)


async def test_facade_serves_https(
    pki: Any, service: SecureRouteServer, serve_facade: ServeFacade, http: aiohttp.ClientSession
) -> None:
    url = await serve_facade(
        "--backend", f"127.0.0.1:{service.port}", "--tls-cert", pki.server_cert, "--tls-key", pki.server_key
    )
    assert url.startswith("https://")
    trusting = ssl.create_default_context(cafile=pki.ca_cert)
    async with http.get(f"{url}/health", ssl=trusting) as response:
        assert response.status == 200 and await response.text() == "Healthy"
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        async with http.get(f"{url}/health", ssl=ssl.create_default_context(cafile=pki.other_ca_cert)):
            pass
    # Plain HTTP to the HTTPS port is not answered as HTTP.
    with pytest.raises(aiohttp.ClientError):
        async with http.get(url.replace("https://", "http://") + "/health") as response:
            response.raise_for_status()
