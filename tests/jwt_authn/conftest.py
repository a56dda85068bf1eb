"""Fixtures for the jwt_authn suite: issuers, authenticators, a hand-driven clock, tiny servers.

Every issuer is a real ``LoopbackIssuer`` (aiohttp on 127.0.0.1) and every authenticator
fetches from it over HTTP. Settings that pace the key-set cache (cooldown, backoff) are tiny
here so lifecycle tests finish in milliseconds; the clock used for claim checks is a
``Clock`` that tests move by hand, so no test depends on the wall clock or a far-future date.

The root ``tests/conftest.py`` provides ``issuer`` (ES256 only) and ``unused_port``; these
fixtures add what the jwt_authn rules need on top.

Usage:
    async def test_x(make_issuer, make_authenticator, issuer_config, clock):
        issuer = await make_issuer(algorithms=("ES256", "EdDSA"))
        authenticator = await make_authenticator(issuer_config(issuer))
        token = issuer.tokens.issue(now=clock.now)
        principal = await authenticator.verify(token)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
from aiohttp import web
from authn_helpers import serve_on_loopback
from jwcrypto import jwk

from jwt_authn import Authenticator, AuthnConfig, IssuerConfig, Policy
from jwt_authn.testing import LoopbackIssuer, TokenFactory, generate_key

#: A fixed instant (2025-06-15T15:06:40Z): claim tests move it by hand instead of using the wall clock.
NOW = 1_750_000_000.0
#: Bounds every wait on a network event, so a broken build fails instead of hanging.
WAIT_S = 10.0


class Clock:
    """An injectable wall clock (``AuthnConfig(clock=...)``) that only moves when told."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def rsa_keys() -> dict[str, jwk.JWK]:
    """RSA keys are slow to generate (~50 ms each): one per algorithm for the whole run."""
    return {alg: generate_key(alg) for alg in ("RS256", "PS256")}


@pytest.fixture
async def make_issuer(
    rsa_keys: dict[str, jwk.JWK],
) -> AsyncIterator[Callable[..., Awaitable[LoopbackIssuer]]]:
    """``await make_issuer(algorithms=("ES256",), audience=..., cache_control=..., port=0)``.

    EC and EdDSA keys are fresh per issuer; RSA keys come from the session (so two issuers in
    one test should sign with EC keys when they must not share keys).
    """
    started: list[LoopbackIssuer] = []

    async def make(
        *,
        algorithms: tuple[str, ...] = ("ES256",),
        audience: str = "secureroute",
        cache_control: str | None = None,
        port: int = 0,
    ) -> LoopbackIssuer:
        issuer = LoopbackIssuer(
            algorithms=algorithms, audience=audience, cache_control=cache_control, port=port
        )
        cached = {alg: rsa_keys[alg] for alg in algorithms if alg in rsa_keys}
        # Set before start() so the factory does not generate RSA keys; the URL is known after start.
        issuer.tokens = TokenFactory("pending", algorithms, audience, keys=dict(cached))
        await issuer.start()
        issuer.tokens.issuer = issuer.url
        started.append(issuer)
        return issuer

    yield make
    for issuer in started:
        await issuer.stop()


def _issuer_config(issuer: LoopbackIssuer | str, **overrides: Any) -> IssuerConfig:
    settings: dict[str, Any] = {
        "issuer": issuer if isinstance(issuer, str) else issuer.url,
        "audiences": ("secureroute",),
        # Tiny pacing so lifecycle tests take milliseconds (defaults: 30 s, 1 s, 60 s).
        "cooldown_s": 0.05,
        "retry_initial_backoff_s": 0.05,
        "retry_max_backoff_s": 0.2,
    }
    settings.update(overrides)
    return IssuerConfig(**settings)


@pytest.fixture
def issuer_config() -> Callable[..., IssuerConfig]:
    """``issuer_config(issuer_or_url, **overrides)``: an IssuerConfig with test pacing."""
    return _issuer_config


@pytest.fixture
async def make_authenticator(clock: Clock) -> AsyncIterator[Callable[..., Awaitable[Authenticator]]]:
    """``await make_authenticator(*issuer_configs, ready=True, observer=None, policy=..., **authn_config)``.

    Uses the ``clock`` fixture unless ``clock=`` is given; waits for every key set when
    ``ready``; every authenticator made is closed at teardown.
    """
    made: list[Authenticator] = []

    async def make(
        *issuers: IssuerConfig, ready: bool = True, observer: Any = None, **settings: Any
    ) -> Authenticator:
        settings.setdefault("clock", clock)
        settings.setdefault("policy", Policy())
        authenticator = Authenticator(AuthnConfig(issuers=issuers, **settings), observer=observer)
        made.append(authenticator)
        await authenticator.start()
        if ready:
            assert await authenticator.wait_ready(WAIT_S), "the key sets did not load"
        return authenticator

    yield make
    for authenticator in made:
        await authenticator.close()


async def _wait_until(
    predicate: Callable[[], bool], what: str = "condition", timeout_s: float = WAIT_S
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[None]]:
    """``await wait_until(lambda: ..., "what", timeout_s=10)``: a bounded poll."""
    return _wait_until


@pytest.fixture
async def serve_routes() -> AsyncIterator[Callable[[Mapping[str, Any]], Awaitable[str]]]:
    """``base_url = await serve_routes({"/jwks": handler})``: a small aiohttp app on loopback,
    for what the loopback issuer cannot do (redirects, chunked bodies, odd documents)."""
    runners: list[web.AppRunner] = []

    async def serve(routes: Mapping[str, Any]) -> str:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        runner, port = await serve_on_loopback(app)
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield serve
    for runner in runners:
        await runner.cleanup()


def publish(issuer: LoopbackIssuer, key: jwk.JWK) -> None:
    """Make ``issuer`` publish ``key`` too (its public part), next to its signing keys."""
    issuer.tokens.keys[f"published-{key.get('kid')}"] = key


@pytest.fixture
def publish_key() -> Callable[[LoopbackIssuer, jwk.JWK], None]:
    """``publish_key(issuer, key)``: the issuer serves this key's public part in its JWKS too."""
    return publish
