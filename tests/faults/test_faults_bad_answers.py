"""The issuer answering badly: 500, HTML, truncated JSON, a huge body, a JWKS without a
usable key, a discovery document naming another issuer.

jwt_authn's rule for each: keep serving with the last good key set if one was loaded (and
keep refreshing in the background); UNAVAILABLE / 503 only while none ever loaded; recover
by itself when the issuer answers well again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from faults_stack import WAIT_S, TunedStack, eventually

from jwt_authn.testing import Fault, LoopbackIssuer, generate_key

StartStack = Callable[..., Awaitable[TunedStack]]


def _jwks_bytes(issuer: LoopbackIssuer) -> bytes:
    return json.dumps(issuer.public_jwks()).encode()


def _useless_jwks() -> bytes:
    private = generate_key("ES256").export(private_key=True, as_dict=True)
    return json.dumps(
        {
            "keys": [
                {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},  # symmetric: dropped
                private,  # private members: dropped
                {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "tiny"},  # 17-bit RSA: dropped
                {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "off-curve"},
                "not a key",
            ]
        }
    ).encode()


def _poisoned_jwks(issuer: LoopbackIssuer) -> bytes:
    keys = issuer.public_jwks()["keys"]
    return json.dumps({"keys": [{**keys[0], "alg": ["ES256"]}, *keys]}).encode()


def _other_issuer(issuer: LoopbackIssuer) -> None:
    issuer.discovery_issuer = "https://evil.example"


BAD_ANSWERS: dict[str, Callable[[LoopbackIssuer], Fault | None]] = {
    "http-500": lambda issuer: Fault(status=500, body=b"internal error", content_type="text/plain"),
    "html-login-page": lambda issuer: Fault(
        body=b"<!doctype html><html><body><form>Sign in</form></body></html>", content_type="text/html"
    ),
    "truncated-json": lambda issuer: Fault(
        body=_jwks_bytes(issuer)[: len(_jwks_bytes(issuer)) // 2], only="jwks"
    ),
    "huge-body-1-mib": lambda issuer: Fault(body=b'{"keys":[' + b" " * (1024 * 1024) + b"]}", only="jwks"),
    "jwks-without-usable-key": lambda issuer: Fault(body=_useless_jwks(), only="jwks"),
    "discovery-names-another-issuer": _other_issuer,
}
CASES = [pytest.param(name, id=name) for name in BAD_ANSWERS]


def _break(issuer: LoopbackIssuer, name: str) -> None:
    fault = BAD_ANSWERS[name](issuer)
    if fault is not None:
        issuer.fault = fault


def _heal(issuer: LoopbackIssuer) -> None:
    issuer.fault, issuer.discovery_issuer = Fault(), None


def _fetches(issuer: LoopbackIssuer) -> int:
    return issuer.discovery_fetches + issuer.jwks_fetches


@pytest.mark.parametrize("answer", CASES)
async def test_bad_answer_before_any_key_set_is_unavailable_then_recovers(
    answer: str, issuer: LoopbackIssuer, start_tuned_stack: StartStack, http: aiohttp.ClientSession
) -> None:
    token = issuer.tokens.issue()
    _break(issuer, answer)
    started = time.monotonic()
    stack = await start_tuned_stack(issuer.url)
    await eventually(lambda: _fetches(issuer) >= 1, what="the issuer was asked")

    assert await stack.grpc_call(token) == ("UNAVAILABLE", "authentication keys are unavailable, retry later")
    status, headers = await stack.http_call(http, token)
    assert status == 503 and headers.get("Retry-After")
    assert await stack.health() == "NOT_SERVING"
    await asyncio.sleep(0.6)  # past the cooldown: this call makes an on-demand refresh, which fails too
    assert await stack.grpc_call(token) == ("UNAVAILABLE", "authentication keys are unavailable, retry later")
    assert (await stack.http_call(http, token))[0] == 503
    await eventually(
        lambda: stack.key_set.refresh_failures >= 3, timeout_s=5, what="background retries go on"
    )
    elapsed = time.monotonic() - started
    # Retries back off (50 ms doubling to 300 ms, plus at most one on-demand try per 0.5 s):
    # a handful per second, never a tight loop.
    assert issuer.discovery_fetches <= 10 + 10 * elapsed, (issuer.discovery_fetches, elapsed)

    _heal(issuer)
    await eventually(lambda: stack.app.authenticator.ready, what="recovery without restart")
    assert await stack.grpc_call(token) == ("OK", None)
    assert (await stack.http_call(http, token))[0] == 200
    assert await stack.health() == "SERVING"


@pytest.mark.parametrize("answer", CASES)
async def test_bad_answer_after_warm_up_keeps_the_last_good_key_set(
    answer: str, issuer: LoopbackIssuer, start_tuned_stack: StartStack, http: aiohttp.ClientSession
) -> None:
    stack = await start_tuned_stack(issuer.url, refresh_interval_s=0.2, min_refresh_interval_s=0.1)
    assert await stack.app.authenticator.wait_ready(WAIT_S)
    failures = stack.key_set.refresh_failures
    _break(issuer, answer)
    await eventually(
        lambda: stack.key_set.refresh_failures >= failures + 2, timeout_s=5, what="refreshes fail"
    )

    assert await stack.grpc_call(issuer.tokens.issue()) == ("OK", None)
    assert (await stack.http_call(http, issuer.tokens.issue()))[0] == 200
    assert await stack.health() == "SERVING"
    stranger = issuer.tokens.issue(key=generate_key("ES256"))
    assert await stack.grpc_call(stranger) == ("UNAUTHENTICATED", "unknown kid")

    successes = stack.key_set.refresh_successes
    _heal(issuer)
    await eventually(lambda: stack.key_set.refresh_successes > successes, what="the refresher is still alive")


async def test_a_poisoned_jwks_entry_is_skipped_and_the_good_keys_serve(
    issuer: LoopbackIssuer, start_tuned_stack: StartStack, http: aiohttp.ClientSession
) -> None:
    # RFC 7517 §5: a key that cannot be used is skipped, not the whole set. An "alg" that is a
    # list once raised TypeError, which killed the background refresher.
    issuer.fault = Fault(body=_poisoned_jwks(issuer), only="jwks")
    stack = await start_tuned_stack(issuer.url)
    assert await stack.app.authenticator.wait_ready(WAIT_S)
    assert await stack.grpc_call(issuer.tokens.issue()) == ("OK", None)
    assert (await stack.http_call(http, issuer.tokens.issue()))[0] == 200
    assert stack.key_set.refresh_failures == 0
