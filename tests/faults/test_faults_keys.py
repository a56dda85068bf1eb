"""Key rotation and removal at the issuer, seen through the service and the facade."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from faults_stack import WAIT_S, TunedStack, eventually

from jwt_authn.testing import LoopbackIssuer

StartStack = Callable[..., Awaitable[TunedStack]]


async def test_rotated_key_is_picked_up_and_old_tokens_keep_working(
    issuer: LoopbackIssuer, start_tuned_stack: StartStack, http: aiohttp.ClientSession
) -> None:
    stack = await start_tuned_stack(issuer.url)
    assert await stack.app.authenticator.wait_ready(WAIT_S)
    old_key = issuer.tokens.keys["ES256"]
    assert await stack.grpc_call(issuer.tokens.issue()) == ("OK", None)
    jwks_before = issuer.jwks_fetches
    await asyncio.sleep(0.6)  # past the 0.5 s cooldown since the first load

    issuer.rotate("ES256")  # new current key; the old one stays published
    assert await stack.grpc_call(issuer.tokens.issue()) == ("OK", None)  # unknown kid -> one refresh
    assert (await stack.http_call(http, issuer.tokens.issue()))[0] == 200
    assert await stack.grpc_call(issuer.tokens.issue(key=old_key)) == ("OK", None)
    assert issuer.jwks_fetches == jwks_before + 1


async def test_withdrawn_key_is_refused_after_a_refresh_even_for_cached_tokens(
    issuer: LoopbackIssuer, start_tuned_stack: StartStack, http: aiohttp.ClientSession
) -> None:
    stack = await start_tuned_stack(issuer.url)
    assert await stack.app.authenticator.wait_ready(WAIT_S)
    old_token = issuer.tokens.issue()
    assert await stack.grpc_call(old_token) == ("OK", None)  # verified once, now in the token cache
    assert (await stack.http_call(http, old_token))[0] == 200
    await asyncio.sleep(0.6)

    old_kid = issuer.rotate("ES256")
    issuer.withdraw(old_kid)
    # A token with the new kid makes the service refresh; the old key is gone from that set.
    assert await stack.grpc_call(issuer.tokens.issue()) == ("OK", None)
    assert old_kid not in stack.key_set.key_set.kids  # type: ignore[union-attr]
    assert await stack.grpc_call(old_token) == ("UNAUTHENTICATED", "unknown kid")
    assert (await stack.http_call(http, old_token))[0] == 401


async def test_rotation_during_periodic_refresh_needs_no_on_demand_fetch(
    issuer: LoopbackIssuer, start_tuned_stack: StartStack
) -> None:
    stack = await start_tuned_stack(issuer.url, refresh_interval_s=0.2, min_refresh_interval_s=0.1)
    assert await stack.app.authenticator.wait_ready(WAIT_S)
    issuer.rotate("ES256")
    new_kid = issuer.kid("ES256")
    await eventually(
        lambda: new_kid in stack.key_set.key_set.kids, what="the periodic refresh sees the new key"
    )  # type: ignore[union-attr]
    on_demand = stack.key_set.on_demand_refreshes
    assert await stack.grpc_call(issuer.tokens.issue()) == ("OK", None)
    assert stack.key_set.on_demand_refreshes == on_demand


async def test_new_kid_first_seen_within_the_cooldown_is_accepted_after_it(
    issuer: LoopbackIssuer, start_tuned_stack: StartStack
) -> None:
    cooldown_s = 2.0
    stack = await start_tuned_stack(issuer.url, cooldown_s=cooldown_s)
    assert await stack.app.authenticator.wait_ready(WAIT_S)
    issuer.rotate("ES256")
    new_token = issuer.tokens.issue()
    # Within the cooldown since the first load: refused without a fetch (that is the rate limit).
    assert await stack.grpc_call(new_token) == ("UNAUTHENTICATED", "unknown kid")
    await asyncio.sleep(cooldown_s + 0.3)
    # After the cooldown the kid must be given its refresh (regression: it used to stay in the
    # negative cache until the next periodic refresh, 10 min by default; fixed in ea14ca7).
    assert await stack.grpc_call(issuer.tokens.issue()) == ("OK", None)
