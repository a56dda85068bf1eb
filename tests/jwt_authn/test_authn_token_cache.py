"""The verified-token cache: a repeat costs no signature check, but every time rule still holds.

Observed through ``authenticator.token_cache`` (hits, misses, length) with a real issuer.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from jwt_authn import IssuerConfig, KeySetUnavailable, PermissionDenied, Policy, Requirement, Unauthenticated
from jwt_authn.testing import TokenFactory, generate_key


async def test_second_verify_of_a_token_is_a_cache_hit_without_signature_check(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer))
    token = issuer.tokens.issue(now=clock.now, scope="read")
    first = await authenticator.verify(token)
    assert (authenticator.token_cache.hits, authenticator.token_cache.misses) == (0, 1)
    # Take the keys away: only a cache hit can still accept the token now.
    await issuer.stop()
    second = await authenticator.verify(token)
    assert (authenticator.token_cache.hits, authenticator.token_cache.misses) == (1, 1)
    assert second == first


async def test_expiry_is_enforced_on_a_cache_hit(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, leeway_s=30))
    token = issuer.tokens.issue(now=clock.now, ttl_s=60)
    await authenticator.verify(token)
    clock.advance(60 + 30)  # exactly at exp + leeway: still valid
    await authenticator.verify(token)
    clock.advance(1)
    with pytest.raises(Unauthenticated) as caught:
        await authenticator.verify(token)
    assert caught.value.reason == "token_expired"
    assert authenticator.token_cache.hits == 2  # both later checks were hits


async def test_not_before_is_enforced_on_a_cache_hit(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, leeway_s=30))
    token = issuer.tokens.issue(now=clock.now, claims={"nbf": int(clock.now) + 20})
    await authenticator.verify(token)  # nbf is within the leeway
    clock.advance(-11)  # the clock steps back: nbf - leeway is now in the future
    with pytest.raises(Unauthenticated) as caught:
        await authenticator.verify(token)
    assert caught.value.reason == "token_not_yet_valid"
    assert authenticator.token_cache.hits == 1


async def test_cache_hit_still_applies_the_method_policy(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    policy = Policy(requirements={"/test.v1.Echo/Write": Requirement(scopes=frozenset({"write"}))})
    authenticator = await make_authenticator(issuer_config(issuer), policy=policy)
    token = issuer.tokens.issue(now=clock.now, scope="read")
    assert await authenticator.authenticate([f"Bearer {token}"], "/test.v1.Echo/Read") is not None
    with pytest.raises(PermissionDenied):
        await authenticator.authenticate([f"Bearer {token}"], "/test.v1.Echo/Write")
    assert authenticator.token_cache.hits == 1


async def test_cached_tokens_are_dropped_when_their_key_leaves_the_jwks(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer))
    old_kid = issuer.kid("ES256")
    token = issuer.tokens.issue(now=clock.now)
    await authenticator.verify(token)
    assert len(authenticator.token_cache) == 1
    issuer.rotate("ES256")
    issuer.withdraw(old_kid)
    # Trigger a refresh: after the (tiny) cooldown, an unknown kid makes one on-demand fetch.
    await asyncio.sleep(0.1)
    refreshes = authenticator.key_sets[issuer.url].refresh_successes
    stranger = issuer.tokens.issue(now=clock.now, key=generate_key("ES256", kid="stranger"))
    with pytest.raises(Unauthenticated):
        await authenticator.verify(stranger)
    assert authenticator.key_sets[issuer.url].refresh_successes == refreshes + 1
    assert len(authenticator.token_cache) == 0
    with pytest.raises(Unauthenticated) as caught:
        await authenticator.verify(token)
    assert caught.value.reason == "unknown_kid"


async def test_cached_tokens_are_dropped_when_the_key_material_behind_their_kid_changes(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    """The issuer swaps the key behind an existing kid: a token verified with the old material
    must be refused like any other token the old material signed, cached or not."""
    authenticator = await make_authenticator(issuer_config(issuer))
    method = "/test.v1.Echo/Read"
    kid = issuer.kid("ES256")
    old_key = issuer.tokens.keys["ES256"]
    cached = issuer.tokens.issue(now=clock.now, sub="cached")
    assert (await authenticator.authenticate([f"Bearer {cached}"], method)).subject == "cached"
    issuer.tokens.keys["ES256"] = generate_key("ES256", kid=kid)  # same kid, new material
    key_set = authenticator.key_sets[issuer.url]
    refreshes = key_set.refresh_successes
    await asyncio.sleep(0.1)  # past the (tiny) cooldown: an unknown kid makes one on-demand fetch
    with pytest.raises(Unauthenticated):
        await authenticator.verify(issuer.tokens.issue(now=clock.now, key=generate_key("ES256", kid="x")))
    assert key_set.refresh_successes == refreshes + 1
    assert len(authenticator.token_cache) == 0
    fresh_with_old_key = issuer.tokens.issue(now=clock.now, key=old_key)
    for authorization in (f"Bearer {cached}", f"bearer {cached}", f"Bearer {fresh_with_old_key}"):
        with pytest.raises(Unauthenticated) as caught:
            await authenticator.authenticate([authorization], method)
        assert caught.value.reason == "invalid_signature"
    new = issuer.tokens.issue(now=clock.now, sub="new")
    assert (await authenticator.authenticate([f"Bearer {new}"], method)).subject == "new"


async def test_token_cache_is_a_bounded_lru(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer), token_cache_size=2)
    cache = authenticator.token_cache
    first, second, third = (issuer.tokens.issue(now=clock.now, sub=s) for s in ("a", "b", "c"))
    await authenticator.verify(first)
    await authenticator.verify(second)
    await authenticator.verify(first)  # first is now the most recently used
    await authenticator.verify(third)  # evicts second, the least recently used
    assert len(cache) == 2
    hits, misses = cache.hits, cache.misses
    await authenticator.verify(first)
    assert (cache.hits, cache.misses) == (hits + 1, misses)
    await authenticator.verify(second)
    assert (cache.hits, cache.misses) == (hits + 1, misses + 1)
    assert len(cache) == 2


async def test_token_cache_size_zero_disables_the_cache(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer), token_cache_size=0)
    token = issuer.tokens.issue(now=clock.now)
    await authenticator.verify(token)
    await authenticator.verify(token)
    assert (len(authenticator.token_cache), authenticator.token_cache.hits) == (0, 0)


async def test_cached_tokens_of_a_removed_key_without_kid_are_dropped(
    make_authenticator: Any, clock: Any, tmp_path: Any
) -> None:
    signing_key = generate_key("ES256")
    public = signing_key.export_public(as_dict=True)
    del public["kid"]
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [public]}))
    config = IssuerConfig(issuer="https://issuer.test", audiences=("secureroute",), jwks_file=str(jwks_file))
    authenticator = await make_authenticator(config)
    factory = TokenFactory("https://issuer.test", algorithms=("ES256",), default_audience="secureroute")
    token = factory.issue(now=clock.now, key=signing_key, drop=("kid",))
    await authenticator.verify(token)
    assert len(authenticator.token_cache) == 1
    # The file now holds another kid-less key only: the cached token's key has left.
    other = generate_key("ES256").export_public(as_dict=True)
    del other["kid"]
    key_set = authenticator.key_sets["https://issuer.test"]
    loads = key_set.refresh_successes
    jwks_file.write_text(json.dumps({"keys": [other], "note": "rotated"}))
    for _ in range(100):  # the file is polled every second
        if key_set.refresh_successes > loads and len(authenticator.token_cache) == 0:
            break
        await asyncio.sleep(0.05)
    assert len(authenticator.token_cache) == 0
    with pytest.raises(Unauthenticated) as caught:
        await authenticator.verify(token)
    assert caught.value.reason == "invalid_signature"


async def test_cache_hit_is_refused_once_the_key_set_is_staler_than_allowed(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, max_staleness_s=0.3))
    token = issuer.tokens.issue(now=clock.now)
    await authenticator.verify(token)
    await issuer.stop()  # no refresh can succeed from now on
    await asyncio.sleep(0.5)
    with pytest.raises(KeySetUnavailable):
        await authenticator.verify(token)
    assert authenticator.token_cache.hits == 1


async def _reason(authenticator: Any, values: list[str]) -> str:
    try:
        await authenticator.authenticate(values, "/test.v1.Echo/Read")
    except Unauthenticated as error:
        return error.reason
    return "ok"


async def test_authenticate_hits_on_the_value_as_sent_and_checks_the_time_on_every_hit(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, leeway_s=0))
    value = f"Bearer {issuer.tokens.issue(now=clock.now, ttl_s=60)}"
    assert await _reason(authenticator, [value]) == "ok"
    await issuer.stop()  # only a cache hit can accept it now
    assert await _reason(authenticator, [value]) == "ok"
    clock.advance(61)
    assert await _reason(authenticator, [value]) == "token_expired"
    assert (authenticator.token_cache.hits, authenticator.token_cache.misses) == (2, 1)


async def test_a_value_that_differs_from_a_cached_one_gets_no_shortcut(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    # The cache is keyed by the authorization value exactly as sent, and a hit skips extraction:
    # any other value, however close, is extracted (and refused, or verified) in full.
    authenticator = await make_authenticator(issuer_config(issuer))
    token = issuer.tokens.issue(now=clock.now)
    assert await _reason(authenticator, [f"Bearer {token}"]) == "ok"
    assert await _reason(authenticator, [f"Bearer {token} "]) == "malformed_authorization"
    assert await _reason(authenticator, [f"Bearer\t{token}"]) == "malformed_authorization"
    assert await _reason(authenticator, [f"Bearer {token}", f"Bearer {token}"]) == "malformed_authorization"
    assert await _reason(authenticator, [f"Bearer {token}\u00e9"]) == "malformed_authorization"
    assert await _reason(authenticator, [f"Bearer {token}\udc80"]) == "malformed_authorization"  # no crash
    assert await _reason(authenticator, [f"Bearer {token}A"]) in {"malformed_token", "invalid_signature"}
    # Another spelling of the scheme, or more spaces (RFC 6750 §2.1: 1*SP), is the same token:
    # verified once under its own key, then hit.
    for spelling in (f"bearer {token}", f"Bearer  {token}"):
        hits = authenticator.token_cache.hits
        assert await _reason(authenticator, [spelling]) == "ok"
        assert await _reason(authenticator, [spelling]) == "ok"
        assert authenticator.token_cache.hits == hits + 1
