"""Key rotation on demand: new key published and used, old key kept for the grace period, then gone."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from issuer_helpers import DEV_CLIENT, Answer, FakeClock, RunningIssuer

PostToken = Callable[..., Awaitable[Answer]]
Verify = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]
JwksOf = Callable[[str], Awaitable[dict[str, Any]]]


async def rotate(client: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with client.post(f"{url}/admin/rotate") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def test_rotation_publishes_new_keys_keeps_old_ones_then_removes_them(
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

    # During the grace period both generations are published; new tokens use the new key.
    assert {k["kid"] for k in (await jwks_of(issuer.url))["keys"]} == old_kids | new_kids
    await verify(issuer.url, old_token["access_token"])
    fresh = (await post_token(issuer.url, {"grant_type": "client_credentials"}, headers=DEV_CLIENT)).body
    header, _ = await verify(issuer.url, fresh["access_token"])
    assert header["kid"] in new_kids

    clock.advance(29)
    assert {k["kid"] for k in (await jwks_of(issuer.url))["keys"]} == old_kids | new_kids
    clock.advance(2)
    assert {k["kid"] for k in (await jwks_of(issuer.url))["keys"]} == new_kids
    # And the removal is persisted: the state file no longer holds the old private keys.
    stored = json.loads((issuer.state_dir / "keys.json").read_text())
    assert {k["kid"] for k in stored["keys"]} == new_kids


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
    clock.advance(601)
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
