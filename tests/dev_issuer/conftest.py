"""Fixtures for the development issuer: the real app on 127.0.0.1:0, a controllable clock,
an HTTP client, a loopback redirect target, and a jwcrypto verifier reading the live JWKS.

Usage:
    async def test_x(issuer: RunningIssuer, client: aiohttp.ClientSession) -> None:
        async with client.get(issuer.url + "/jwks") as response: ...
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from issuer_helpers import WAIT_S, Answer, Callback, FakeClock, RunningIssuer
from jwcrypto import jwk, jwt

from dev_issuer import IssuerConfig, bind_socket, create_app, start_site, url_for


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "issuer-state"


@pytest.fixture
async def start_issuer(
    state_dir: Path, clock: FakeClock
) -> AsyncIterator[Callable[..., Awaitable[RunningIssuer]]]:
    """Factory: ``await start_issuer(**config_overrides)``; all are stopped at teardown."""
    running: list[RunningIssuer] = []

    async def start(**overrides: Any) -> RunningIssuer:
        sock = bind_socket("127.0.0.1", 0)
        url = url_for("127.0.0.1", sock.getsockname()[1])
        settings: dict[str, Any] = {"state_dir": state_dir, "clock": clock, **overrides}
        config = IssuerConfig(issuer_url=url, **settings)
        runner = await start_site(create_app(config), sock, access_log=False)
        issuer = RunningIssuer(url=url, state_dir=config.state_dir, config=config, runner=runner)
        running.append(issuer)
        return issuer

    yield start
    for issuer in running:
        await issuer.stop()


@pytest.fixture
async def issuer(start_issuer: Callable[..., Awaitable[RunningIssuer]]) -> RunningIssuer:
    return await start_issuer()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=WAIT_S)
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


@pytest.fixture
async def callback() -> AsyncIterator[Callback]:
    """A real HTTP server on 127.0.0.1:<free port>/callback, like a native app's redirect listener."""
    target = Callback(url="")

    async def receive(request: web.Request) -> web.Response:
        target.received.append(dict(request.query))
        return web.Response(text="callback received")

    async def no_icon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/callback", receive)
    # A browser landing on the callback asks its origin for an icon: a 404 would be a console error.
    app.router.add_get("/favicon.ico", no_icon)
    sock = bind_socket("127.0.0.1", 0)
    runner = await start_site(app, sock, access_log=False)
    target.url = f"http://127.0.0.1:{sock.getsockname()[1]}/callback"
    yield target
    await runner.cleanup()


async def fetch_jwks(client: aiohttp.ClientSession, issuer_url: str) -> dict[str, Any]:
    async with client.get(f"{issuer_url}/jwks") as response:
        assert response.status == 200
        document: dict[str, Any] = json.loads(await response.text())
        return document


@pytest.fixture
def verify(client: aiohttp.ClientSession) -> Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]:
    """``header, claims = await verify(issuer_url, token)`` against the live JWKS (of ``keys_from``)."""

    async def check(
        issuer_url: str, token: str, *, audience: str = "secureroute", keys_from: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        document = await fetch_jwks(client, keys_from or issuer_url)
        keys = jwk.JWKSet.from_json(json.dumps(document))
        verified = jwt.JWT(
            jwt=token,
            key=keys,
            algs=["RS256", "ES256"],
            expected_type="JWS",
            check_claims={"iss": issuer_url, "aud": audience, "exp": None, "iat": None},
        )
        return json.loads(verified.header), json.loads(verified.claims)

    return check


@pytest.fixture
def jwks_of(client: aiohttp.ClientSession) -> Callable[[str], Awaitable[dict[str, Any]]]:
    async def get(issuer_url: str) -> dict[str, Any]:
        return await fetch_jwks(client, issuer_url)

    return get


@pytest.fixture
def post_token(client: aiohttp.ClientSession) -> Callable[..., Awaitable[Answer]]:
    """``await post_token(issuer_url, {...}, headers=basic(id, secret))``."""

    async def post(issuer_url: str, data: Any, *, headers: dict[str, str] | None = None) -> Answer:
        async with client.post(f"{issuer_url}/token", data=data, headers=headers) as response:
            text = await response.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = text
            return Answer(response.status, dict(response.headers), body)

    return post
