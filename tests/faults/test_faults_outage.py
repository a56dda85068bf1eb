"""The issuer down at start, down after warm-up, and slower than the fetch timeout.

Through the real service and facade: UNAVAILABLE / HTTP 503 + Retry-After only while no key
set was ever loaded; recovery without restart; valid tokens keep working through an outage
once keys are loaded; latency stays bounded by the fetch timeout; fetches stay bounded.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import aiohttp
from faults_stack import WAIT_S, TunedStack, eventually

from jwt_authn.testing import Fault, LoopbackIssuer, encode_segment, generate_key

UNAVAILABLE_DETAILS = "authentication keys are unavailable, retry later"

StartStack = Callable[..., Awaitable[TunedStack]]


async def test_issuer_down_at_start_then_recovery_without_restart(
    issuer: LoopbackIssuer, start_tuned_stack: StartStack, http: aiohttp.ClientSession
) -> None:
    token = issuer.tokens.issue()
    await issuer.stop()
    stack = await start_tuned_stack(issuer.url)

    assert await stack.grpc_call(token) == ("UNAVAILABLE", UNAVAILABLE_DETAILS)
    status, headers = await stack.http_call(http, token)
    assert status == 503 and headers.get("Retry-After") == "5"
    assert await stack.health() == "NOT_SERVING"
    assert await stack.health("") == "SERVING"  # the process is up; only SecureRoute is not
    # Junk needs no keys: it is refused at once (401), not reported as an outage.
    assert (await stack.grpc_call("garbage"))[0] == "UNAUTHENTICATED"
    other = generate_key("ES256")
    assert await stack.grpc_call(issuer.tokens.issue(key=other, claims={"iss": "https://other.example"})) == (
        "UNAUTHENTICATED",
        "issuer mismatch",
    )
    assert (await stack.http_call(http, "garbage"))[0] == 401

    await issuer.start()  # same port
    await eventually(lambda: stack.app.authenticator.ready, what="key set loaded after the issuer came up")
    await eventually(lambda: _is(stack.health(), "SERVING"), what="health SERVING")
    assert await stack.grpc_call(token) == ("OK", None)
    assert (await stack.http_call(http, token))[0] == 200
    assert 1 <= issuer.discovery_fetches <= 3  # counted since the restart: no storm on recovery


def _reheaded(token: str, header: dict[str, str]) -> str:
    """``token`` with its header replaced (the signature no longer matches, nor needs to)."""
    return encode_segment(header) + token[token.index(".") :]


async def _is(value: Awaitable[str], expected: str) -> bool:
    return (await value) == expected


async def test_issuer_down_after_warm_up_keeps_valid_tokens_working(
    issuer: LoopbackIssuer, start_tuned_stack: StartStack, http: aiohttp.ClientSession
) -> None:
    stack = await start_tuned_stack(issuer.url, refresh_interval_s=0.2, min_refresh_interval_s=0.1)
    assert await stack.app.authenticator.wait_ready(WAIT_S)
    await issuer.stop()
    failures = stack.key_set.refresh_failures
    await eventually(lambda: stack.key_set.refresh_failures >= failures + 2, what="refreshes fail while down")

    # Fresh tokens (new jti: not in the token cache) still verify with the last good keys.
    assert await stack.grpc_call(issuer.tokens.issue()) == ("OK", None)
    assert (await stack.http_call(http, issuer.tokens.issue()))[0] == 200
    assert await stack.health() == "SERVING"
    # An unknown kid is the token's problem, not an outage: 401, not 503.
    stranger = issuer.tokens.issue(key=generate_key("ES256"))
    assert await stack.grpc_call(stranger) == ("UNAUTHENTICATED", "unknown kid")
    assert (await stack.http_call(http, stranger))[0] == 401


async def test_slow_issuer_at_start_answers_unavailable_within_the_fetch_timeout(
    issuer: LoopbackIssuer, start_tuned_stack: StartStack, http: aiohttp.ClientSession
) -> None:
    issuer.fault = Fault(delay_s=3.0)  # six times the 0.5 s fetch timeout
    token = issuer.tokens.issue()
    started = time.monotonic()
    stack = await start_tuned_stack(issuer.url)

    grpc_results, http_results = await asyncio.gather(
        asyncio.gather(*(stack.grpc_call(token, timeout_s=WAIT_S) for _ in range(20))),
        asyncio.gather(*(stack.http_call(http, token) for _ in range(10))),
    )
    # Every call ends by itself (no DEADLINE_EXCEEDED at 10 s): the fetch timeout bounds it.
    assert set(grpc_results) == {("UNAVAILABLE", UNAVAILABLE_DETAILS)}
    assert {status for status, _ in http_results} == {503}
    assert await stack.health() == "NOT_SERVING"
    # Refreshes are single flight: attempts cannot overlap, and each lasts the fetch timeout.
    elapsed = time.monotonic() - started
    assert issuer.discovery_fetches <= elapsed / 0.5 + 2, (issuer.discovery_fetches, elapsed)

    issuer.fault = Fault()
    await eventually(lambda: stack.app.authenticator.ready, what="recovery once the issuer is fast again")
    assert await stack.grpc_call(token) == ("OK", None)


async def test_slow_issuer_after_warm_up_bounds_a_new_kid_and_keeps_known_kids_fast(
    issuer: LoopbackIssuer, start_tuned_stack: StartStack, http: aiohttp.ClientSession
) -> None:
    stack = await start_tuned_stack(issuer.url)
    assert await stack.app.authenticator.wait_ready(WAIT_S)
    old_key = issuer.tokens.keys["ES256"]
    issuer.rotate("ES256")
    issuer.fault = Fault(delay_s=3.0, only="jwks")
    await asyncio.sleep(0.6)  # past the 0.5 s cooldown since the first load

    new_kid_call = asyncio.ensure_future(stack.grpc_call(issuer.tokens.issue(), timeout_s=WAIT_S))
    await asyncio.sleep(0.05)  # the on-demand refresh is now in flight
    # Known kids never wait for that refresh.
    assert not new_kid_call.done()
    assert await stack.grpc_call(issuer.tokens.issue(key=old_key), timeout_s=WAIT_S) == ("OK", None)
    assert (await stack.http_call(http, issuer.tokens.issue(key=old_key)))[0] == 200
    # The new kid gets its answer once the refresh gives up (0.5 s), not after the issuer's 3 s.
    assert await new_kid_call == ("UNAUTHENTICATED", "unknown kid")
    assert await stack.health() == "SERVING"


async def test_fetches_stay_bounded_under_a_flood_of_unknown_kids_and_junk(
    issuer: LoopbackIssuer, start_tuned_stack: StartStack, http: aiohttp.ClientSession
) -> None:
    stack = await start_tuned_stack(issuer.url, cooldown_s=30.0)  # jwt_authn's default cooldown
    assert await stack.app.authenticator.wait_ready(WAIT_S)
    before = (issuer.discovery_fetches, issuer.jwks_fetches)
    attacker = generate_key("ES256")
    floods = [issuer.tokens.issue(key=attacker, headers={"kid": uuid.uuid4().hex}) for _ in range(300)]
    grpc_results = await asyncio.gather(*(stack.grpc_call(token) for token in floods[:200]))
    http_results = await asyncio.gather(*(stack.http_call(http, token) for token in floods[200:]))
    assert set(grpc_results) == {("UNAUTHENTICATED", "unknown kid")}
    assert {status for status, _ in http_results} == {401}
    # 300 random kids cost at most one refresh (single flight, then the cooldown).
    assert issuer.jwks_fetches - before[1] <= 1
    assert issuer.discovery_fetches - before[0] <= 1

    after_flood = (issuer.discovery_fetches, issuer.jwks_fetches)
    junk = [
        "garbage",
        "a.b.c",
        issuer.tokens.issue(claims={"iss": "https://elsewhere.example"}, key=attacker),
        _reheaded(issuer.tokens.issue(), {"alg": "none"}),
        _reheaded(issuer.tokens.issue(), {"alg": "HS256", "kid": issuer.kid("ES256")}),
        issuer.tokens.issue(ttl_s=-3600, key=attacker, headers={"kid": "expired-and-unknown"}),
    ] * 50
    results = await asyncio.gather(*(stack.grpc_call(token) for token in junk))
    assert {code for code, _ in results} == {"UNAUTHENTICATED"}
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == after_flood  # junk never costs a fetch
