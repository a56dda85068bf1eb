"""The mistakes a hurried embedder makes fail clearly, never silently (issue 21, points 3 to 6).

Real parts only: a ``LoopbackIssuer``, grpc.aio and threaded servers and an aiohttp app on
127.0.0.1:0.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from authn_helpers import serve_on_loopback

from jwt_authn import (
    AsyncAuthInterceptor,
    Authenticator,
    AuthnConfig,
    Policy,
    SyncAuthenticator,
    SyncAuthInterceptor,
    Unauthenticated,
    authn_middleware,
)

WAIT_S = 10.0
METHOD = "/test.v1.Echo/Unary"


# --- 3. forgetting `await authenticator.start()` ------------------------------------------------


async def test_the_first_authenticate_starts_the_key_sets_background_lifecycle(
    issuer: Any, issuer_config: Any, wait_until: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = issuer_config(issuer, min_refresh_interval_s=0.05, refresh_interval_s=0.05)
    authenticator = Authenticator(AuthnConfig(issuers=(config,)))  # start() forgotten
    try:
        principal = await authenticator.authenticate([f"Bearer {issuer.tokens.issue(sub='alice')}"], METHOD)
        assert principal is not None and principal.subject == "alice"
        assert await authenticator.wait_ready(WAIT_S)  # before: ready stayed False for good
        fetched = issuer.jwks_fetches
        await wait_until(lambda: issuer.jwks_fetches >= fetched + 2, "background refreshes")
        assert any(
            "authenticator.start()" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
        )
    finally:
        await authenticator.close()


async def test_an_unstarted_aiohttp_app_recovers_when_the_issuer_it_missed_at_boot_comes_back(
    issuer: Any, issuer_config: Any, wait_until: Any
) -> None:
    # The default cooldown (30 s): no request may refresh on demand again, only the background loop.
    config = issuer_config(issuer, cooldown_s=30.0)
    authenticator = Authenticator(AuthnConfig(issuers=(config,), policy=Policy()))
    app = web.Application(middlewares=[authn_middleware(authenticator, check_served=False)])

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app.router.add_get("/hello", hello)  # no on_startup start(): the mistake under test
    runner, port = await serve_on_loopback(app)
    token = issuer.tokens.issue(sub="alice")
    await issuer.stop()  # down at boot
    statuses: list[int] = []
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:

            async def status() -> int:
                async with session.get(f"http://127.0.0.1:{port}/hello") as response:
                    statuses.append(response.status)
                    return response.status

            assert await status() == 503
            await issuer.start()
            await wait_until(lambda: authenticator.ready, "the background retry after the outage")
            assert await status() == 200
    finally:
        await runner.cleanup()
        await authenticator.close()


# --- 4 and 5. the adapter of the other server kind ----------------------------------------------


def _echo(request: bytes, context: Any) -> bytes:
    return request


_ECHO = grpc.method_handlers_generic_handler(
    "test.v1.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(_echo)}
)


async def _call(port: int) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(METHOD)(b"hi", timeout=WAIT_S)
    return caught.value


async def test_the_async_interceptor_on_a_threaded_server_fails_clearly_and_the_server_still_stops(
    issuer: Any, issuer_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = Authenticator(AuthnConfig(issuers=(issuer_config(issuer),)))
    server = grpc.server(
        ThreadPoolExecutor(max_workers=2), interceptors=[AsyncAuthInterceptor(authenticator)]
    )
    server.add_generic_rpc_handlers((_ECHO,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        for _ in range(2):  # the serving thread survives the first call
            error = await _call(port)
            assert error.code() == grpc.StatusCode.UNKNOWN  # grpc.server's answer to a failing interceptor
        assert "use SyncAuthInterceptor(SyncAuthenticator(config))" in caplog.text
    finally:
        stopped = await asyncio.to_thread(lambda: server.stop(0).wait(WAIT_S))
        await authenticator.close()
    assert stopped, "server.stop(0).wait() did not return"


async def test_the_sync_interceptor_on_an_aio_server_fails_naming_the_async_interceptor(
    issuer: Any, issuer_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sync_authenticator = await asyncio.to_thread(
        SyncAuthenticator, AuthnConfig(issuers=(issuer_config(issuer),)), timeout_s=5.0
    )
    server = grpc.aio.server(interceptors=[SyncAuthInterceptor(sync_authenticator)])
    server.add_generic_rpc_handlers((_ECHO,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        error = await _call(port)
        assert error.code() == grpc.StatusCode.UNKNOWN  # grpc.aio's answer to a failing interceptor
        assert "use AsyncAuthInterceptor(Authenticator(config))" in caplog.text
    finally:
        await server.stop(0)
        await asyncio.to_thread(sync_authenticator.close)


# --- 6. an issuer configured with a trailing slash ----------------------------------------------


async def test_a_trailing_slash_on_the_issuer_is_named_with_both_values_at_warning(
    issuer: Any, issuer_config: Any, wait_until: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    slashed = issuer.url + "/"  # the IdP's discovery document and tokens say issuer.url
    authenticator = Authenticator(AuthnConfig(issuers=(issuer_config(slashed),)))
    await authenticator.start()
    token = issuer.tokens.issue(sub="alice")
    try:
        for _ in range(3):
            with pytest.raises(Unauthenticated, match="issuer_mismatch"):
                await authenticator.authenticate([f"Bearer {token}"], METHOD)
        await wait_until(lambda: "discovery: the document names" in caplog.text, "the discovery warning")
    finally:
        await authenticator.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    discovery = next(w for w in warnings if "discovery: the document names" in w)
    assert f"{issuer.url!r}" in discovery and f"{slashed!r}" in discovery and "trailing slash" in discovery
    mismatches = [w for w in warnings if "a token names the issuer" in w]
    assert len(mismatches) == 1, mismatches  # the first mismatch per issuer, not every call
    assert f"{issuer.url!r}" in mismatches[0] and f"{slashed!r}" in mismatches[0]
    assert "trailing slash" in mismatches[0]
    assert token not in caplog.text
