"""Hypothesis profiles for the fuzz tests, and the live parts they run against.

``ci`` (the default) runs few examples, derandomized so CI is repeatable, with no example
database; ``long`` runs many, random, keeping found failures in ``.hypothesis/``:

    HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/fuzz -p no:cacheprovider --timeout=0

Usage:
    async def test_x(fuzz_issuer: LoopbackIssuer, fuzz_authenticator: Authenticator) -> None: ...
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio
from fuzz_strategies import AUDIENCE, FUZZ_ALGORITHMS, FUZZ_NOW, SCOPED_METHOD
from hypothesis import HealthCheck, settings

from jwt_authn import Authenticator, AuthnConfig, IssuerConfig, Policy, Requirement
from jwt_authn.testing import LoopbackIssuer

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long", max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzz_issuer() -> AsyncIterator[LoopbackIssuer]:
    async with LoopbackIssuer(algorithms=FUZZ_ALGORITHMS, audience=AUDIENCE) as issuer:
        yield issuer


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzz_authenticator(fuzz_issuer: LoopbackIssuer) -> AsyncIterator[Authenticator]:
    """An authenticator on the real issuer over HTTP (discovery, then JWKS), its clock frozen."""
    config = AuthnConfig(
        issuers=(
            IssuerConfig(
                issuer=fuzz_issuer.url,
                audiences=(AUDIENCE,),
                roles_claim="realm_access.roles",
                fetch_timeout_s=2.0,
            ),
        ),
        clock=lambda: float(FUZZ_NOW),
        policy=Policy(
            requirements={SCOPED_METHOD: Requirement(scopes=frozenset({"read"}), roles=frozenset({"admin"}))}
        ),
    )
    authenticator = Authenticator(config)
    await authenticator.start()
    assert await authenticator.wait_ready(timeout_s=15)
    yield authenticator
    await authenticator.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzz_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
