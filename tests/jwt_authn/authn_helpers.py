"""Helpers the jwt_authn tests import (their fixtures live in conftest.py).

Usage:
    from authn_helpers import outcome
    assert await outcome(authenticator, token) == "token_expired"
"""

from __future__ import annotations

from jwt_authn import Authenticator, KeySetUnavailable, Unauthenticated


async def outcome(authenticator: Authenticator, token: str) -> str:
    """``"accepted"`` when ``token`` verifies, else the stable reason it was refused for."""
    try:
        await authenticator.verify(token)
    except (Unauthenticated, KeySetUnavailable) as error:
        return error.reason
    return "accepted"
