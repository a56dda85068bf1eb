"""``--listen-unix`` in operation: the real process logs the socket, serves on it, and removes it on
SIGTERM; with (mutual) TLS configured the socket speaks the same TLS as the TCP port.
"""

from __future__ import annotations

import stat
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jwt_authn.testing import LoopbackIssuer
from service import SecureRouteServer, ServiceSettings

WAIT_S = 20.0
ServeFacade = Callable[..., Coroutine[Any, Any, str]]


async def _health(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int((await stub.Check(health_pb2.HealthCheckRequest(), timeout=WAIT_S)).status)


async def test_the_process_serves_the_socket_and_removes_it_on_sigterm(
    tmp_path: Path, issuer: LoopbackIssuer, spawn: Any
) -> None:
    path = tmp_path / "svc.sock"
    program = await spawn(
        "service", "--listen", "127.0.0.1:0", "--listen-unix", str(path), "--issuer", issuer.url,
        "--audiences", "secureroute", "--drain-delay-s", "0", "--grace-period-s", "1",
    )  # fmt: skip
    port = (await program.listening()).port
    (logged,) = await program.wait_for(r"listening on unix:(\S+)")
    assert logged.group(1) == str(path)
    assert stat.S_ISSOCK(path.lstat().st_mode)
    assert await _health(f"unix:{path}") == health_pb2.HealthCheckResponse.SERVING
    assert await _health(f"127.0.0.1:{port}") == health_pb2.HealthCheckResponse.SERVING

    assert await program.stop() == 0
    assert not path.exists()
    assert "Traceback" not in "\n".join(program.lines)


async def test_the_socket_speaks_the_same_mutual_tls(
    *,
    tmp_path: Path,
    pki: Any,
    issuer: LoopbackIssuer,
    start_service: Callable[[ServiceSettings], Awaitable[SecureRouteServer]],
    make_service_settings: Callable[..., ServiceSettings],
    serve_facade: ServeFacade,
    http: aiohttp.ClientSession,
) -> None:
    path = tmp_path / "svc.sock"
    settings = make_service_settings(
        issuer.url, "--listen-unix", str(path), "--tls-cert", pki.server_cert, "--tls-key", pki.server_key,
        "--tls-client-ca", pki.ca_cert,
    )  # fmt: skip
    app = await start_service(settings)
    assert await app.authenticator.wait_ready(timeout_s=WAIT_S)
    # gRPC checks the certificate against the socket's path (percent-encoded) unless told a name.
    tls = (
        "--backend", f"unix:{path}", "--backend-tls", "--backend-ca", pki.ca_cert,
        "--backend-server-name", "localhost",
    )  # fmt: skip
    with_cert = await serve_facade(
        *tls, "--backend-client-cert", pki.client_cert, "--backend-client-key", pki.client_key
    )
    bearer = {"Authorization": f"Bearer {issuer.tokens.issue()}"}
    async with http.get(f"{with_cert}/secure-route", headers=bearer) as response:
        assert (response.status, await response.text()) == (200, "Super secret stuff")
    # No client certificate, or no TLS at all: the socket is no back door.
    for url in (await serve_facade(*tls), await serve_facade("--backend", f"unix:{path}")):
        async with http.get(f"{url}/health") as response:
            assert response.status == 503
