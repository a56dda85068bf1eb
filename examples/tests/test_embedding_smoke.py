"""Embedding smoke test: the guard's README, followed to the letter, on one grpc.aio server and
one aiohttp app, against a loopback issuer. Needs nothing but jwt-authn (and pytest)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web

from jwt_authn import (
    AsyncAuthInterceptor,
    Authenticator,
    AuthnConfig,
    IssuerConfig,
    Policy,
    authn_middleware,
    current_principal,
    operation,
    recommended_server_options,
)
from jwt_authn.testing import LoopbackIssuer

WAIT_S = 15.0
HELLO = "/smoke.v1.Smoke/Hello"


async def _hello(request: bytes, context: Any) -> bytes:
    return current_principal().subject.encode()


@operation(HELLO)
async def _hello_http(request: web.Request) -> web.Response:
    return web.Response(text=current_principal().subject)


@pytest.fixture
async def authenticator(issuer: LoopbackIssuer) -> AsyncIterator[Authenticator]:
    config = AuthnConfig(issuers=(IssuerConfig(issuer=issuer.url, audiences=("greeter",)),), policy=Policy())
    guard = Authenticator(config)
    await guard.start()
    assert await guard.wait_ready(WAIT_S)
    yield guard
    await guard.close()


async def test_a_grpc_aio_server_embeds_the_guard(
    issuer: LoopbackIssuer, authenticator: Authenticator
) -> None:
    server = grpc.aio.server(
        interceptors=[AsyncAuthInterceptor(authenticator)],
        options=recommended_server_options(authenticator.config),
    )
    handlers = {"Hello": grpc.unary_unary_rpc_method_handler(_hello)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("smoke.v1.Smoke", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            hello = channel.unary_unary(HELLO, request_serializer=None, response_deserializer=None)
            token = issuer.tokens.issue(sub="alice")
            assert await asyncio.wait_for(
                hello(b"", metadata=(("authorization", f"Bearer {token}"),)), WAIT_S
            ) == (b"alice")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await asyncio.wait_for(hello(b""), WAIT_S)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(0)


async def test_an_aiohttp_app_embeds_the_guard(issuer: LoopbackIssuer, authenticator: Authenticator) -> None:
    app = web.Application(middlewares=[authn_middleware(authenticator)])
    app.router.add_get("/hello", _hello_http)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as http:
            token = issuer.tokens.issue(sub="alice")
            async with http.get(
                f"http://{host}:{port}/hello", headers={"Authorization": f"Bearer {token}"}
            ) as ok:
                assert (ok.status, await ok.text()) == (200, "alice")
            async with http.get(f"http://{host}:{port}/hello") as denied:
                assert (denied.status, denied.headers["WWW-Authenticate"]) == (401, "Bearer")
    finally:
        await runner.cleanup()
