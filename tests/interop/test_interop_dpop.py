"""DPoP with code nobody here wrote: panva's ``dpop`` (proofs), ``oauth4webapi`` (a client that
obtains DPoP-bound tokens and calls a resource with them, nonces included) and ``oidc-provider``
with its DPoP feature (a real OpenID provider issuing DPoP-bound JWT access tokens), against both
transports of our programs: the gRPC service and the HTTP facade in front of it (the split
deployment, the facade trusted to forward the method and URL).

The node side is ``client.mjs`` and ``oidc_provider.mjs`` beside this file (packages from
``package.json``, installed by ``make install``); everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from helpers import secureroute_stub

from dev_issuer import IssuerConfig, bind_socket, create_app, start_site, url_for
from dev_issuer.token_client import DEV_CLIENT_ID, DEV_CLIENT_SECRET
from secureroute.v1 import secureroute_pb2
from service.server import SecureRouteServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WAIT_S = 30.0
SECURE_ROUTE = "/secureroute.v1.SecureRouteService/SecureRoute"
OP_CLIENT_ID = "interop"
OP_CLIENT_SECRET = "interop-client-secret-0123456789abcdef"


def _node() -> list[str]:
    if not (ROOT / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("node_modules is missing the interop packages: run make install (npm ci)")
    return ["node"]


async def _run_node(*args: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        *_node(), *args, cwd=HERE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), WAIT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    # stderr carries node's stack trace on failure (never a token: the scripts print those to stdout).
    assert process.returncode == 0, stderr.decode()[-2000:]
    result: dict[str, Any] = json.loads(stdout)
    return result


async def client(mode: str, **settings: Any) -> dict[str, Any]:
    return await _run_node("client.mjs", mode, json.dumps(settings))


@dataclass
class Split:
    grpc_target: str
    facade_url: str

    @property
    def grpc_htu(self) -> str:
        return f"http://{self.grpc_target}{SECURE_ROUTE}"

    @property
    def http_url(self) -> str:
        return f"{self.facade_url}/secure-route"


@pytest.fixture
def split(
    make_service_settings: Callable[..., Any],
    start_service: Callable[..., Awaitable[SecureRouteServer]],
    start_facade: Callable[..., Awaitable[str]],
) -> Callable[..., Awaitable[Split]]:
    """``await split(issuer_url, *service_flags)``: the service (ready, trusting the facade on
    loopback) and the facade in front of it."""

    async def start(issuer_url: str, *flags: str) -> Split:
        settings = make_service_settings(issuer_url, "--trusted-proxies", "127.0.0.1", *flags)
        service = await start_service(settings)
        assert await service.authenticator.wait_ready(timeout_s=WAIT_S)
        target = f"127.0.0.1:{service.port}"
        return Split(target, await start_facade(target))

    return start


@pytest.fixture
async def dev_issuer(tmp_path: Path) -> AsyncIterator[str]:
    sock = bind_socket("127.0.0.1", 0)
    url = url_for("127.0.0.1", sock.getsockname()[1])
    runner = await start_site(
        create_app(IssuerConfig(issuer_url=url, state_dir=tmp_path)), sock, access_log=False
    )
    yield url
    await runner.cleanup()


@pytest.fixture
async def oidc_provider() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """``await oidc_provider(require_nonce=False)``: panva's oidc-provider on 127.0.0.1; its issuer URL."""
    started: list[asyncio.subprocess.Process] = []

    async def start(*, require_nonce: bool = False) -> str:
        settings = {"clientId": OP_CLIENT_ID, "clientSecret": OP_CLIENT_SECRET, "requireNonce": require_nonce}
        process = await asyncio.create_subprocess_exec(
            *_node(),
            "oidc_provider.mjs",
            json.dumps(settings),
            cwd=HERE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,  # its development warnings
        )
        started.append(process)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), WAIT_S)
        issuer: str = json.loads(line)["issuer"]
        assert issuer.startswith("http://127.0.0.1:")
        return issuer

    yield start
    for process in started:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), WAIT_S)


async def _grpc_subject(target: str, token: str, proof: str) -> str:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = secureroute_stub(channel)
        metadata = (("authorization", f"DPoP {token}"), ("dpop", proof))
        reply = await stub.SecureRoute(
            secureroute_pb2.SecureRouteRequest(), metadata=metadata, timeout=WAIT_S
        )
        return str(reply.subject)


async def _grpc_refused(target: str, token: str, proof: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _grpc_subject(target, token, proof)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    return refused.value.details() or ""


async def _http_get(http: aiohttp.ClientSession, url: str, token: str, proof: str) -> tuple[int, Any]:
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof, "Accept": "application/json"}
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json()


async def test_proofs_from_panvas_dpop_package_are_accepted(
    dev_issuer: str, split: Callable[..., Awaitable[Split]], http: aiohttp.ClientSession
) -> None:
    programs = await split(dev_issuer)
    got = await client(
        "dpop",
        tokenEndpoint=f"{dev_issuer}/token",
        clientId=DEV_CLIENT_ID,
        clientSecret=DEV_CLIENT_SECRET,
        params={"sub": "alice"},
        targets=[
            {"htm": "POST", "htu": programs.grpc_htu},
            {"htm": "GET", "htu": programs.http_url},
            {"htm": "GET", "htu": programs.http_url},
        ],
    )
    # The development issuer accepted the package's proof at its token endpoint and bound the token.
    assert got["tokenType"] == "DPoP"
    grpc_proof, http_proof, other_http_proof = got["proofs"]
    assert await _grpc_subject(programs.grpc_target, got["token"], grpc_proof) == "alice"
    status, body = await _http_get(http, programs.http_url, got["token"], http_proof)
    assert (status, body["subject"]) == (200, "alice")
    # The servers do check those proofs: a replayed one, or one for another request, is refused.
    assert "dpop proof replayed" in await _grpc_refused(programs.grpc_target, got["token"], grpc_proof)
    assert "dpop htm mismatch" in await _grpc_refused(programs.grpc_target, got["token"], other_http_proof)


@pytest.mark.parametrize("require_nonce", [False, True], ids=["no_nonce", "server_nonce"])
async def test_tokens_obtained_with_oauth4webapi_are_accepted(
    dev_issuer: str, split: Callable[..., Awaitable[Split]], require_nonce: bool
) -> None:
    programs = await split(dev_issuer, *(["--dpop-require-nonce"] if require_nonce else []))
    got = await client(
        "oauth4webapi",
        issuer=dev_issuer,
        clientId=DEV_CLIENT_ID,
        clientSecret=DEV_CLIENT_SECRET,
        params={"sub": "alice"},
        resource=programs.http_url,
        targets=[] if require_nonce else [{"htm": "POST", "htu": programs.grpc_htu}],
    )
    assert got["tokenType"] == "dpop"  # oauth4webapi lower-cases the token_type
    # oauth4webapi's own request to the facade: the proof it made, and with a server nonce its own
    # retry after our use_dpop_nonce challenge and DPoP-Nonce header.
    assert got["resource"]["status"] == 200, got["resource"]
    assert got["resource"]["body"]["subject"] == "alice"
    assert got.get("resourceNonceRetry", False) is require_nonce
    if not require_nonce:
        assert await _grpc_subject(programs.grpc_target, got["token"], got["proofs"][0]) == "alice"


@pytest.mark.parametrize("require_nonce", [False, True], ids=["no_nonce", "server_nonce"])
async def test_oidc_provider_issues_dpop_bound_tokens_our_programs_accept_on_both_transports(
    oidc_provider: Callable[..., Awaitable[str]],
    split: Callable[..., Awaitable[Split]],
    http: aiohttp.ClientSession,
    require_nonce: bool,
) -> None:
    """The provider's nonce (at its token endpoint) is oauth4webapi's to handle; ours is the service's."""
    issuer = await oidc_provider(require_nonce=require_nonce)
    programs = await split(issuer)
    got = await client(
        "oauth4webapi",
        issuer=issuer,
        clientId=OP_CLIENT_ID,
        clientSecret=OP_CLIENT_SECRET,
        resource=programs.http_url,
        targets=[{"htm": "POST", "htu": programs.grpc_htu}, {"htm": "GET", "htu": programs.http_url}],
    )
    assert got["tokenType"] == "dpop"
    claims = json.loads(_b64(got["token"].split(".")[1]))
    assert claims["iss"] == issuer
    assert claims["cnf"] == {"jkt": got["jkt"]}
    # HTTP, by oauth4webapi itself; then gRPC and HTTP with proofs of the same key.
    assert got["resource"]["status"] == 200, got["resource"]
    assert got["resource"]["body"]["subject"] == OP_CLIENT_ID
    grpc_proof, http_proof = got["proofs"]
    assert await _grpc_subject(programs.grpc_target, got["token"], grpc_proof) == OP_CLIENT_ID
    assert await _http_get(http, programs.http_url, got["token"], http_proof) == (
        200,
        {"message": "Super secret stuff", "subject": OP_CLIENT_ID, "claims": claims},
    )
    # The provider's token without its proof is refused on both transports.
    async with grpc.aio.insecure_channel(programs.grpc_target) as channel:
        stub = secureroute_stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SecureRoute(
                secureroute_pb2.SecureRouteRequest(),
                metadata=(("authorization", f"Bearer {got['token']}"),),
                timeout=WAIT_S,
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with http.get(programs.http_url, headers={"Authorization": f"DPoP {got['token']}"}) as response:
        assert response.status == 401


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
