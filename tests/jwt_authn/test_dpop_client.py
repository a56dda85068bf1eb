"""The client side of DPoP (``jwt_authn.dpop_client``) against the guard's own servers on loopback.

Every proof the client makes must pass the server-side checks of ``jwt_authn.dpop``: gRPC call
credentials on grpc.aio and threaded channels (plaintext loopback via local credentials, and TLS),
the HTTP helper on the aiohttp middleware, and the nonce round trip on both transports. The
clock is the suite's hand-driven ``Clock``, shared by the client key and the servers.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import pytest
from authn_helpers import cert_pem, certificate, key_pem
from dpop_servers import KINDS, METHOD, SERVICE, TLS, Server, start
from jwcrypto import jwk

from jwt_authn import AuthnConfig, DPoPConfig, IssuerConfig, Policy
from jwt_authn.dpop_client import (
    DPoPCallCredentials,
    DPoPKey,
    DPoPNonces,
    dpop_headers,
    dpop_request,
    grpc_htu,
    http_htu,
    nonce_requested,
)
from jwt_authn.testing import LoopbackIssuer

WAIT_S = 10.0


def _parts(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = proof.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return decode(header), decode(payload)


def test_a_proof_has_the_rfc_9449_shape_and_no_private_member(clock: Any) -> None:
    key = DPoPKey.generate(clock=clock)
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"  # RFC 9449 §7.1's example token
    proof = key.proof("get", "https://api.example.com/a", access_token=token, nonce="n-1")
    header, payload = _parts(proof)
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "ES256"
    assert "d" not in header["jwk"] and header["jwk"]["kty"] == "EC"
    assert jwk.JWK(**header["jwk"]).thumbprint() == key.jkt
    assert payload["ath"] == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"  # the RFC's own ath
    assert payload == {**payload, "htm": "get", "htu": "https://api.example.com/a", "iat": int(clock())}
    assert payload["nonce"] == "n-1"
    second = _parts(key.proof("GET", "https://api.example.com/a"))[1]
    assert second["jti"] != payload["jti"]
    assert "ath" not in second and "nonce" not in second
    assert json.loads(key.private_jwk_json())["d"] not in repr(key)


@pytest.mark.parametrize("alg", ["ES384", "ES512", "EdDSA", "PS256"])
def test_other_algorithms_sign_with_their_own_key_type(alg: str) -> None:
    key = DPoPKey.generate(alg)
    header, _ = _parts(key.proof("POST", "http://127.0.0.1/x"))
    assert header["alg"] == alg
    assert jwk.JWK(**header["jwk"]).thumbprint() == key.jkt


def test_a_stored_key_comes_back_with_the_same_thumbprint() -> None:
    key = DPoPKey.generate()
    again = DPoPKey.from_jwk(key.private_jwk_json())
    assert (again.jkt, again.alg) == (key.jkt, "ES256")


@pytest.mark.parametrize(
    ("make", "setting"),
    [
        (lambda: DPoPKey.generate("HS256"), "alg"),
        (lambda: DPoPKey(jwk.JWK.generate(kty="EC", crv="P-256"), alg="EdDSA"), "key"),
        (lambda: DPoPKey.from_jwk(jwk.JWK.generate(kty="EC", crv="P-256").export_public()), "key"),
        (lambda: DPoPKey.from_jwk("{not json"), "key"),
    ],
)
def test_a_bad_key_fails_at_construction_naming_the_setting(make: Callable[[], Any], setting: str) -> None:
    with pytest.raises(ValueError, match=f"^{setting}:"):
        make()


@pytest.mark.parametrize(
    ("service_url", "htu"),
    [
        # gRPC core over TLS; a default port is already dropped by gRPC
        ("https://api.example.com/pkg.v1.Svc", "https://api.example.com/pkg.v1.Svc/Get"),
        # local (plaintext loopback) credentials: gRPC core writes no scheme
        ("://127.0.0.1:50051/pkg.v1.Svc", "http://127.0.0.1:50051/pkg.v1.Svc/Get"),
    ],
)
def test_grpc_htu_follows_the_http2_mapping(service_url: str, htu: str) -> None:
    assert grpc_htu(service_url, "Get") == htu


def test_http_htu_drops_query_and_fragment() -> None:
    assert http_htu("https://api.example.com/v1/a?b=c#d") == "https://api.example.com/v1/a"
    with pytest.raises(ValueError, match=r"^htu:"):
        http_htu("/relative")


def test_nonce_requested_reads_the_challenge_and_the_header() -> None:
    challenge = {"WWW-Authenticate": 'DPoP error="use_dpop_nonce", algs="ES256"', "DPoP-Nonce": "n"}
    assert nonce_requested(401, challenge) == "n"
    assert nonce_requested(401, {**challenge, "WWW-Authenticate": 'DPoP error="invalid_dpop_proof"'}) is None
    assert nonce_requested(200, challenge) is None
    # A proxy may join the challenges into one value (RFC 9110 §11.6.1); commas inside quotes stay.
    joined = 'Bearer, DPoP error="use_dpop_nonce", error_description="a, b", algs="ES256"'
    assert nonce_requested(401, {"WWW-Authenticate": joined, "DPoP-Nonce": "n"}) == "n"
    # The error of another scheme's challenge is not a nonce request.
    other = 'Bearer error="use_dpop_nonce", DPoP algs="ES256"'
    assert nonce_requested(401, {"WWW-Authenticate": other, "DPoP-Nonce": "n"}) is None


def test_nonces_are_kept_per_origin_and_bounded() -> None:
    nonces = DPoPNonces(max_origins=2)
    nonces.remember("https://A.example/x", "1")
    nonces.remember("https://b.example/y", "2")
    assert nonces.get("https://a.example/other") == "1"
    nonces.remember("https://c.example/", "3")
    assert nonces.get("https://a.example/") is None
    assert nonces.get("https://b.example/") == "2"


@pytest.fixture
async def bound(
    make_issuer: Callable[..., Awaitable[LoopbackIssuer]], clock: Any
) -> tuple[LoopbackIssuer, DPoPKey, str]:
    issuer = await make_issuer()
    key = DPoPKey.generate(clock=clock)
    token = issuer.tokens.issue(sub="alice", now=clock(), claims={"cnf": {"jkt": key.jkt}})
    return issuer, key, token


@pytest.fixture
async def serve(
    issuer_config: Callable[..., IssuerConfig], clock: Any
) -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[Server] = []

    async def make(kind: str, issuer: LoopbackIssuer, tls: TLS | None = None, **dpop: Any) -> Server:
        config = AuthnConfig(
            issuers=(issuer_config(issuer),), policy=Policy(), clock=clock, dpop=DPoPConfig(**dpop)
        )
        server = await start(kind, config, tls=tls)
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


async def _aio_call(target: str, credentials: grpc.ChannelCredentials, **options: Any) -> bytes:
    async with grpc.aio.secure_channel(target, credentials, options=tuple(options.items())) as channel:
        reply: bytes = await channel.unary_unary(METHOD)(b"hi", timeout=WAIT_S)
        return reply


def _threaded_call(target: str, credentials: grpc.ChannelCredentials) -> bytes:
    with grpc.secure_channel(target, credentials) as channel:
        reply: bytes = channel.unary_unary(METHOD)(b"hi", timeout=WAIT_S)
        return reply


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "http"])
async def test_call_credentials_sign_each_call_on_aio_and_threaded_channels(
    kind: str, serve: Any, bound: Any
) -> None:
    issuer, key, token = bound
    server = await serve(kind, issuer)
    credentials = DPoPCallCredentials(key, token).channel_credentials()
    target = f"127.0.0.1:{server.port}"
    # Two calls on one channel: the second proof is fresh, or the replay check refuses it.
    async with grpc.aio.secure_channel(target, credentials) as channel:
        for _ in range(2):
            assert await channel.unary_unary(METHOD)(b"hi", timeout=WAIT_S) == b"alice"
    assert await asyncio.to_thread(_threaded_call, target, credentials) == b"alice"


async def test_without_call_credentials_the_bound_token_is_refused(serve: Any, bound: Any) -> None:
    """The control for the test above: the server does check, so the credentials are what passes."""
    issuer, _, token = bound
    server = await serve("aio", issuer)
    plain = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    async with grpc.aio.secure_channel(f"127.0.0.1:{server.port}", plain) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(METHOD)(
                b"hi", metadata=(("authorization", f"DPoP {token}"),), timeout=WAIT_S
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "proof missing" in (caught.value.details() or "")


async def test_a_token_function_is_asked_per_call_and_its_failure_never_shows_the_token(
    serve: Any, bound: Any
) -> None:
    issuer, key, token = bound
    server = await serve("aio", issuer)
    tokens = [token, RuntimeError(token)]

    def current() -> str:
        item = tokens.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    credentials = DPoPCallCredentials(key, current).channel_credentials()
    async with grpc.aio.secure_channel(f"127.0.0.1:{server.port}", credentials) as channel:
        assert await channel.unary_unary(METHOD)(b"hi", timeout=WAIT_S) == b"alice"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(METHOD)(b"hi", timeout=WAIT_S)
    assert token not in f"{caught.value.details()} {caught.value.debug_error_string()}"
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "DPoP proof not made: RuntimeError" in (caught.value.details() or "")


@pytest.fixture(scope="module")
def tls() -> TLS:
    ca = certificate("dpop client test CA", None)
    server = certificate("localhost", ca, server=True)
    client = certificate("client", ca)
    return TLS(
        server_cert=cert_pem(server[0]),
        server_key=key_pem(server[1]),
        client_ca=cert_pem(ca[0]),
        ca=cert_pem(ca[0]),
        client_cert=cert_pem(client[0]),
        client_key=key_pem(client[1]),
    )


@pytest.mark.parametrize("kind", ["aio", "sync"])
async def test_over_tls_the_proof_names_https(kind: str, serve: Any, bound: Any, tls: TLS) -> None:
    """Over TLS the server expects an https htu (from its connection): gRPC's service_url says so."""
    issuer, key, token = bound
    server = await serve(kind, issuer, tls=tls)
    channel_tls = grpc.ssl_channel_credentials(tls.ca, tls.client_key, tls.client_cert)
    credentials = DPoPCallCredentials(key, token).channel_credentials(channel_tls)
    assert await _aio_call(f"localhost:{server.port}", credentials) == b"alice"


async def test_http_headers_and_the_nonce_round_trip(serve: Any, bound: Any) -> None:
    issuer, key, token = bound
    server = await serve("http", issuer, require_nonce=True)
    url = f"http://127.0.0.1:{server.port}/orders?page=2"
    nonces = DPoPNonces()
    async with aiohttp.ClientSession() as session:
        # By hand: the first request has no nonce, the server asks for one.
        async with session.get(url, headers=dpop_headers(key, token, "GET", url)) as refused:
            assert refused.status == 401
            nonce = nonce_requested(refused.status, refused.headers)
        assert nonce
        async with session.get(url, headers=dpop_headers(key, token, "get", url, nonce=nonce)) as accepted:
            assert (accepted.status, await accepted.text()) == (200, "alice")
        # The helper does the same round trip by itself, then remembers the nonce for the origin.
        async with await dpop_request(
            session, "GET", url, key=key, access_token=token, nonces=nonces
        ) as answer:
            assert (answer.status, await answer.text()) == (200, "alice")
        assert nonces.get(url) == nonce


async def test_http_without_nonce_support_the_helper_makes_one_request(serve: Any, bound: Any) -> None:
    issuer, key, token = bound
    server = await serve("http", issuer)
    url = f"http://127.0.0.1:{server.port}/orders"
    # A credential among the caller's headers (any letter case) is dropped: two would be refused.
    stale = {"authorization": "Bearer stale", "Accept": "text/plain"}
    async with aiohttp.ClientSession() as session:
        async with await dpop_request(
            session, "GET", url, key=key, access_token=token, headers=stale
        ) as answer:
            assert (answer.status, await answer.text()) == (200, "alice")
        # The same token under Bearer is refused: the helper's DPoP scheme is what passed.
        async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as refused:
            assert refused.status == 401


@pytest.mark.parametrize("kind", ["aio", "sync"])
async def test_grpc_nonce_round_trip(kind: str, serve: Any, bound: Any) -> None:
    issuer, key, token = bound
    server = await serve(kind, issuer, require_nonce=True)
    dpop = DPoPCallCredentials(key, token)
    async with grpc.aio.secure_channel(f"127.0.0.1:{server.port}", dpop.channel_credentials()) as channel:
        call = channel.unary_unary(METHOD)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(b"hi", timeout=WAIT_S)
        assert dpop.retry_with_nonce(caught.value)
        assert dpop.nonce
        assert await call(b"hi", timeout=WAIT_S) == b"alice"
        # Another refusal is no nonce request: no retry.
        dpop.nonce = "not-the-servers"
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await channel.unary_unary(f"/{SERVICE}/Unary")(b"hi", metadata=(("dpop", "x"),), timeout=WAIT_S)
        assert not dpop.retry_with_nonce(again.value)
