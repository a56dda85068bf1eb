"""Key rotation on demand: new key published at once, signing after the JWKS max-age; old key
signing until then, kept for the grace period after it, then gone. ``immediate`` signs at once."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from issuer_helpers import DEV_CLIENT, Answer, FakeClock, RunningIssuer

PostToken = Callable[..., Awaitable[Answer]]
Verify = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]
JwksOf = Callable[[str], Awaitable[dict[str, Any]]]


MAX_AGE_S = 60  # the issuer's JWKS max-age: a rotated-in key waits this long to sign


async def rotate(client: aiohttp.ClientSession, url: str, *, immediate: bool = False) -> dict[str, Any]:
    query = "?immediate=true" if immediate else ""
    async with client.post(f"{url}/admin/rotate{query}") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def _signing_kid(post_token: PostToken, verify: Verify, url: str, alg: str = "RS256") -> str:
    fresh = await post_token(url, {"grant_type": "client_credentials", "alg": alg}, headers=DEV_CLIENT)
    header, _ = await verify(url, fresh.body["access_token"])
    return str(header["kid"])


async def test_rotation_publishes_first_signs_after_the_max_age_then_removes_the_old_keys(
    *,
    start_issuer: Callable[..., Awaitable[RunningIssuer]],
    client: aiohttp.ClientSession,
    clock: FakeClock,
    jwks_of: JwksOf,
    post_token: PostToken,
    verify: Verify,
) -> None:
    issuer = await start_issuer(rotation_grace_s=30)
    old_kids = {k["kid"] for k in (await jwks_of(issuer.url))["keys"]}
    old_token = (await post_token(issuer.url, {"grant_type": "client_credentials"}, headers=DEV_CLIENT)).body

    summary = await rotate(client, issuer.url)
    new_kids = {k["kid"] for k in summary["added"]}
    assert {k["kid"] for k in summary["retiring"]} == old_kids
    assert len(new_kids) == 2 and not new_kids & old_kids
    assert {k["signs_from"] for k in summary["added"]} == {clock.now + MAX_AGE_S}

    # Both generations are published at once, but the old keys sign until the max-age has passed:
    # a verifier that fetched the JWKS just before the rotation never meets an unknown kid.
    async with client.get(f"{issuer.url}/jwks") as response:
        assert response.headers["Cache-Control"] == f"public, max-age={MAX_AGE_S}"
    assert {k["kid"] for k in (await jwks_of(issuer.url))["keys"]} == old_kids | new_kids
    await verify(issuer.url, old_token["access_token"])
    for alg in ("RS256", "ES256"):
        assert await _signing_kid(post_token, verify, issuer.url, alg) in old_kids
    clock.advance(MAX_AGE_S - 1)
    assert await _signing_kid(post_token, verify, issuer.url) in old_kids
    clock.advance(1)
    for alg in ("RS256", "ES256"):
        assert await _signing_kid(post_token, verify, issuer.url, alg) in new_kids

    # The grace period starts when the old keys stop signing.
    clock.advance(29)
    assert {k["kid"] for k in (await jwks_of(issuer.url))["keys"]} == old_kids | new_kids
    clock.advance(2)
    assert {k["kid"] for k in (await jwks_of(issuer.url))["keys"]} == new_kids
    # And the removal is persisted: the state file no longer holds the old private keys.
    stored = json.loads((issuer.state_dir / "keys.json").read_text())
    assert {k["kid"] for k in stored["keys"]} == new_kids


async def test_immediate_rotation_signs_with_the_new_keys_at_once(
    issuer: RunningIssuer, client: aiohttp.ClientSession, post_token: PostToken, verify: Verify
) -> None:
    summary = await rotate(client, issuer.url, immediate=True)
    assert await _signing_kid(post_token, verify, issuer.url) in {k["kid"] for k in summary["added"]}
    async with client.post(f"{issuer.url}/admin/rotate?immediate=yes") as response:
        assert response.status == 400


async def test_a_second_rotation_before_the_first_signs_keeps_the_order(
    issuer: RunningIssuer,
    client: aiohttp.ClientSession,
    clock: FakeClock,
    post_token: PostToken,
    verify: Verify,
) -> None:
    original = await _signing_kid(post_token, verify, issuer.url)
    first = {k["kid"] for k in (await rotate(client, issuer.url))["added"]}
    clock.advance(30)
    second = {k["kid"] for k in (await rotate(client, issuer.url))["added"]}
    assert await _signing_kid(post_token, verify, issuer.url) == original
    clock.advance(30)
    assert await _signing_kid(post_token, verify, issuer.url) in first
    clock.advance(30)
    assert await _signing_kid(post_token, verify, issuer.url) in second


async def test_a_restart_during_the_grace_period_keeps_both_generations(
    start_issuer: Callable[..., Awaitable[RunningIssuer]],
    client: aiohttp.ClientSession,
    clock: FakeClock,
    jwks_of: JwksOf,
) -> None:
    first = await start_issuer(rotation_grace_s=600)
    await rotate(client, first.url)
    kids = {k["kid"] for k in (await jwks_of(first.url))["keys"]}
    assert len(kids) == 4
    await first.stop()
    second = await start_issuer(rotation_grace_s=600)
    assert {k["kid"] for k in (await jwks_of(second.url))["keys"]} == kids
    clock.advance(MAX_AGE_S + 601)
    assert len((await jwks_of(second.url))["keys"]) == 2


async def test_admin_refuses_browser_requests(issuer: RunningIssuer, client: aiohttp.ClientSession) -> None:
    # A web page on the developer's machine could post here cross-site; browsers send Origin.
    async with client.post(
        f"{issuer.url}/admin/rotate", headers={"Origin": "https://evil.example"}
    ) as response:
        assert response.status == 403


async def test_admin_is_post_only(issuer: RunningIssuer, client: aiohttp.ClientSession) -> None:
    async with client.get(f"{issuer.url}/admin/rotate") as response:
        assert response.status == 405
