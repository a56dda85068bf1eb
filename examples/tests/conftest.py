"""Fixtures for the examples' tests: only what jwt-authn ships (``jwt_authn.testing``).

Nothing here may import the secureroute application: these tests also run in a virtual
environment that holds the guard and the examples alone (``make guard-dist``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jwt_authn.testing import LoopbackIssuer


@pytest.fixture
async def issuer() -> AsyncIterator[LoopbackIssuer]:
    # ES256 only: EC keys are generated in milliseconds, RSA keys are not.
    async with LoopbackIssuer(algorithms=("ES256",), audience="greeter") as running:
        yield running
