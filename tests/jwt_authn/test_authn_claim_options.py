"""Claim rules that depend on IssuerConfig settings (the fixed-config cases are token vectors).

Time is the injected ``clock`` (AuthnConfig(clock=...)), moved by hand.
"""

from __future__ import annotations

from typing import Any

import pytest
from authn_helpers import outcome

from jwt_authn.testing import generate_key

METHOD = "/test.v1.Echo/Unary"


async def test_exp_is_required_unless_require_exp_is_false(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    token = issuer.tokens.issue(now=clock.now, drop=["exp"])
    strict = await make_authenticator(issuer_config(issuer))
    assert await outcome(strict, token) == "missing_claim"
    lenient = await make_authenticator(issuer_config(issuer, require_exp=False))
    principal = await lenient.verify(token)
    assert principal.expires_at is None
    # require_exp=False does not switch the exp check off when exp is present.
    expired = issuer.tokens.issue(now=clock.now - 3600, ttl_s=60)
    assert await outcome(lenient, expired) == "token_expired"


@pytest.mark.parametrize(
    ("leeway_s", "exp_offset_s", "expected"),
    [
        (0.0, 0, "accepted"),  # now == exp: still valid (expired means now > exp)
        (0.0, -1, "token_expired"),
        (120.0, -120, "accepted"),
        (120.0, -121, "token_expired"),
    ],
)
async def test_exp_is_checked_against_the_injected_clock_with_the_configured_leeway(
    *,
    issuer: Any,
    make_authenticator: Any,
    issuer_config: Any,
    clock: Any,
    leeway_s: float,
    exp_offset_s: int,
    expected: str,
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, leeway_s=leeway_s))
    token = issuer.tokens.issue(now=clock.now - 600, claims={"exp": int(clock.now) + exp_offset_s})
    assert await outcome(authenticator, token) == expected


async def test_nbf_becomes_valid_when_the_clock_reaches_it_minus_leeway(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, leeway_s=10), token_cache_size=0)
    token = issuer.tokens.issue(now=clock.now, claims={"nbf": int(clock.now) + 100})
    assert await outcome(authenticator, token) == "token_not_yet_valid"
    clock.advance(89)
    assert await outcome(authenticator, token) == "token_not_yet_valid"
    clock.advance(1)
    assert await outcome(authenticator, token) == "accepted"


async def test_unknown_issuer_is_rejected_without_any_fetch(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer))
    fetches = (issuer.discovery_fetches, issuer.jwks_fetches)
    for iss in (
        issuer.url + "/",
        issuer.url[:-1],
        issuer.url + "/x",
        "https://evil.example",
        issuer.url.upper(),
    ):
        token = issuer.tokens.issue(now=clock.now, claims={"iss": iss}, headers={"kid": "never-seen"})
        assert await outcome(authenticator, token) == "issuer_mismatch"
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == fetches


async def test_audience_matches_any_configured_audience(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, audiences=("orders", "billing")))
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now, aud="billing")) == "accepted"
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now, aud=["x", "orders"])) == "accepted"
    assert (
        await outcome(authenticator, issuer.tokens.issue(now=clock.now, aud="secureroute"))
        == "audience_mismatch"
    )


async def test_allow_any_audience_skips_only_the_audience_match(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, audiences=(), allow_any_audience=True))
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now, aud="anyone")) == "accepted"
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now, drop=["aud"])) == "accepted"
    # The type rule still holds: an aud that is not a string (list) is malformed.
    assert (
        await outcome(authenticator, issuer.tokens.issue(now=clock.now, claims={"aud": 7}))
        == "malformed_claims"
    )


async def test_required_claims_must_be_present(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, required_claims=("client_id", "tenant")))
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now)) == "missing_claim"
    with_tenant = issuer.tokens.issue(now=clock.now, claims={"tenant": "acme"})
    assert await outcome(authenticator, with_tenant) == "accepted"
    without_client = issuer.tokens.issue(now=clock.now, claims={"tenant": "acme"}, drop=["client_id"])
    assert await outcome(authenticator, without_client) == "missing_claim"


@pytest.mark.parametrize(
    ("typ", "expected"),
    [
        ("at+jwt", "accepted"),
        ("AT+JWT", "accepted"),
        ("application/at+jwt", "accepted"),
        ("JWT", "wrong_token_type"),
        (None, "wrong_token_type"),
    ],
)
async def test_require_access_token_type_accepts_only_at_jwt(
    *, issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any, typ: str | None, expected: str
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer, require_access_token_type=True))
    token = issuer.tokens.issue(now=clock.now, headers={"typ": typ}, drop=["typ"] if typ is None else [])
    assert await outcome(authenticator, token) == expected


async def test_typ_jwt_is_accepted_when_access_token_type_is_not_required(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer))
    assert (
        await outcome(authenticator, issuer.tokens.issue(now=clock.now, headers={"typ": "JWT"})) == "accepted"
    )


async def test_algorithm_outside_the_issuers_allowlist_is_refused(
    make_issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    issuer = await make_issuer(algorithms=("ES256", "EdDSA"))
    authenticator = await make_authenticator(issuer_config(issuer, algorithms=("ES256",)))
    assert await outcome(authenticator, issuer.tokens.issue(now=clock.now, alg="ES256")) == "accepted"
    assert (
        await outcome(authenticator, issuer.tokens.issue(now=clock.now, alg="EdDSA"))
        == "algorithm_not_allowed"
    )


async def test_token_without_kid_is_tried_against_at_most_max_keys_without_kid(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    # The issuer publishes three ES256 keys, in this order: current, oldest, middle.
    oldest_kid = issuer.rotate("ES256")
    middle_key = issuer.tokens.keys["ES256"]
    issuer.rotate("ES256")
    published = [k["kid"] for k in issuer.public_jwks()["keys"]]
    assert published == [issuer.kid("ES256"), oldest_kid, middle_key.get("kid")]
    token = issuer.tokens.issue(now=clock.now, key=middle_key, drop=["kid"])
    generous = await make_authenticator(issuer_config(issuer), max_keys_without_kid=3)
    assert await outcome(generous, token) == "accepted"
    bounded = await make_authenticator(issuer_config(issuer), max_keys_without_kid=2)
    assert await outcome(bounded, token) == "invalid_signature"
    # A kid-less token signed by a key the issuer never published fails after trying the keys.
    stranger = issuer.tokens.issue(now=clock.now, key=generate_key("ES256"), drop=["kid"])
    assert await outcome(generous, stranger) == "invalid_signature"
