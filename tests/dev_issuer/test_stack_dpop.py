"""DPoP end to end on the development stack (``python -m dev_stack``, real processes on loopback):
a token bound by the development issuer to a client key, then calls with fresh proofs over gRPC
and HTTP, on the one program and on the split deployment (where the service trusts the facade's
forwarded method and URL: ``dev_stack --split`` sets ``--trusted-proxies 127.0.0.1``).
"""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import grpc
import pytest
from helpers import secureroute_stub

from dev_issuer.token_client import fetch_token
from dev_stack.testing import LiveStack
from jwt_authn.dpop_client import DPoPCallCredentials, DPoPKey, dpop_headers, dpop_request
from secureroute.v1 import secureroute_pb2

WAIT_S = 15.0


@pytest.fixture(scope="module", params=["one", "split"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with LiveStack(tmp_path_factory.mktemp(f"stack-{request.param}"), split=request.param == "split") as live:
        yield live


def _bound_token(stack: LiveStack) -> tuple[DPoPKey, str]:
    key = DPoPKey.generate()
    return key, fetch_token(stack.issuer_url, sub="alice", dpop_key=key)


async def test_grpc_with_dpop_call_credentials(stack: LiveStack) -> None:
    key, token = _bound_token(stack)
    credentials = DPoPCallCredentials(key, token)
    async with grpc.aio.secure_channel(stack.grpc_address, credentials.channel_credentials()) as channel:
        stub = secureroute_stub(channel)
        for _ in range(2):  # a fresh proof per call: the second is no replay
            reply = await stub.SecureRoute(secureroute_pb2.SecureRouteRequest(), timeout=WAIT_S)
            assert reply.subject == "alice"
    # The bound token as a plain bearer token is refused (RFC 9449 §7.2).
    async with grpc.aio.insecure_channel(stack.grpc_address) as channel:
        stub = secureroute_stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SecureRoute(
                secureroute_pb2.SecureRouteRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=WAIT_S,
            )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_http_with_dpop_headers(stack: LiveStack) -> None:
    key, token = _bound_token(stack)
    url = f"{stack.http_url}/secure-route"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as http:
        async with await dpop_request(
            http, "GET", url, key=key, access_token=token, headers={"Accept": "application/json"}
        ) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["subject"] == "alice"
        # A proof replayed, and the token without a proof, are refused with a DPoP challenge.
        headers = dpop_headers(key, token, "GET", url)
        async with http.get(url, headers=headers) as first, http.get(url, headers=headers) as again:
            assert (first.status, again.status) == (200, 401)
            assert "DPoP" in again.headers["WWW-Authenticate"]
        async with http.get(url, headers={"Authorization": f"DPoP {token}"}) as missing:
            assert missing.status == 401
            assert token not in await missing.text()
