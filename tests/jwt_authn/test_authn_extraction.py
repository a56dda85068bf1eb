"""Extraction rules: where the token comes from, its scheme, its count, its size.

RFC 6750 §2.1 (``Bearer`` credentials in the ``authorization`` header, scheme matched
case-insensitively, RFC 7235 §2.1), §3.1 (no credentials -> a challenge without an error code),
and the size cap applied before anything is parsed.
"""

from __future__ import annotations

from typing import Any

import pytest

from jwt_authn import AuthnError, KeySetUnavailable, Unauthenticated, challenge
from jwt_authn.extractor import extract_bearer
from jwt_authn.grpc_aio import authorization_values

METHOD = "/test.v1.Echo/Unary"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

# (id, authorization values, expected token or reason)
EXTRACTION_VECTORS: list[tuple[str, list[str], str]] = [
    ("bearer_canonical", [f"Bearer {TOKEN}"], TOKEN),
    ("bearer_lower_case_scheme", [f"bearer {TOKEN}"], TOKEN),
    ("bearer_upper_case_scheme", [f"BEARER {TOKEN}"], TOKEN),
    ("bearer_mixed_case_scheme", [f"bEaReR {TOKEN}"], TOKEN),
    ("no_authorization_value", [], "missing_token"),
    ("two_authorization_values", [f"Bearer {TOKEN}", f"Bearer {TOKEN}"], "malformed_authorization"),
    ("basic_scheme", ["Basic YWxpY2U6c2VjcmV0"], "unsupported_scheme"),
    ("dpop_scheme", [f"DPoP {TOKEN}"], "unsupported_scheme"),
    ("scheme_only", ["Bearer"], "malformed_authorization"),
    ("scheme_and_space_only", ["Bearer "], "malformed_authorization"),
    ("empty_value", [""], "malformed_authorization"),
    ("token_without_scheme", [TOKEN], "malformed_authorization"),
    ("two_credentials", [f"Bearer {TOKEN} {TOKEN}"], "malformed_authorization"),
    # RFC 6750 §2.1: "Bearer" 1*SP b64token.
    ("two_spaces_before_token", [f"Bearer  {TOKEN}"], TOKEN),
    ("three_spaces_before_token", [f"Bearer   {TOKEN}"], TOKEN),
    ("tab_before_token", [f"Bearer\t{TOKEN}"], "malformed_authorization"),
    ("space_and_tab_before_token", [f"Bearer \t{TOKEN}"], "malformed_authorization"),
    ("spaces_only", ["Bearer   "], "malformed_authorization"),
    ("trailing_space", [f"Bearer {TOKEN} "], "malformed_authorization"),
    ("comma_separated_credentials", [f"Bearer {TOKEN},{TOKEN}"], "malformed_authorization"),
    ("control_character", [f"Bearer {TOKEN}\t"], "malformed_authorization"),
    ("non_ascii_credential", [f"Bearer {TOKEN}é"], "malformed_authorization"),
    ("quoted_credential", [f'Bearer "{TOKEN}"'], "malformed_authorization"),
]


@pytest.mark.parametrize(
    ("values", "expected"), [v[1:] for v in EXTRACTION_VECTORS], ids=[v[0] for v in EXTRACTION_VECTORS]
)
def test_extraction_vector(values: list[str], expected: str) -> None:
    if expected == TOKEN:
        assert extract_bearer(values, max_token_bytes=8192) == TOKEN
        return
    with pytest.raises(Unauthenticated) as caught:
        extract_bearer(values, max_token_bytes=8192)
    assert caught.value.reason == expected


def test_only_the_authorization_metadata_key_is_read() -> None:
    metadata = (("x-authorization", "Bearer a"), ("authorization", "Bearer b"), ("cookie", "Bearer c"))
    assert authorization_values(metadata) == ["Bearer b"]
    assert authorization_values(None) == []


def test_no_credentials_gets_a_challenge_without_error_code_rfc6750_3_1() -> None:
    with pytest.raises(Unauthenticated) as caught:
        extract_bearer([], max_token_bytes=8192)
    assert caught.value.bearer_error == ""
    assert challenge(caught.value) == "Bearer"
    assert challenge(caught.value, realm="orders") == 'Bearer realm="orders"'


def test_bad_credentials_get_an_invalid_token_or_invalid_request_challenge() -> None:
    with pytest.raises(Unauthenticated) as malformed:
        extract_bearer(["Bearer a b"], max_token_bytes=8192)
    assert (
        challenge(malformed.value)
        == 'Bearer error="invalid_request", error_description="malformed authorization"'
    )
    invalid = Unauthenticated("token_expired")
    assert (
        challenge(invalid, realm="r")
        == 'Bearer realm="r", error="invalid_token", error_description="token expired"'
    )


def test_key_set_unavailable_has_no_bearer_challenge_error() -> None:
    assert challenge(KeySetUnavailable("key_set_unavailable")) == "Bearer"


def test_token_one_byte_over_the_cap_is_refused_before_parsing() -> None:
    # Junk that would be a malformed_token if it were parsed: the size check must come first.
    assert extract_bearer(["Bearer " + "a" * 300], max_token_bytes=300) == "a" * 300
    with pytest.raises(Unauthenticated) as caught:
        extract_bearer(["Bearer " + "a" * 301], max_token_bytes=300)
    assert caught.value.reason == "token_too_large"


async def test_valid_token_over_max_token_bytes_is_refused_and_fits_under_a_larger_cap(
    issuer: Any, make_authenticator: Any, issuer_config: Any, clock: Any
) -> None:
    # A correctly signed token padded to just over the default 8 KiB cap.
    padding = "x" * 8192
    token = issuer.tokens.issue(now=clock.now, claims={"padding": padding})
    assert 8192 < len(token) < 12_000
    default_cap = await make_authenticator(issuer_config(issuer))
    with pytest.raises(Unauthenticated) as caught:
        await default_cap.authenticate([f"Bearer {token}"], METHOD)
    assert caught.value.reason == "token_too_large"
    with pytest.raises(Unauthenticated) as direct:
        await default_cap.verify(token)
    assert direct.value.reason == "token_too_large"
    # Refused before parsing: not even the token cache saw it.
    assert default_cap.token_cache.misses == 0
    larger_cap = await make_authenticator(issuer_config(issuer), max_token_bytes=16 * 1024)
    principal = await larger_cap.authenticate([f"Bearer {token}"], METHOD)
    assert principal is not None
    assert principal.claims["padding"] == padding


async def test_missing_token_is_reported_before_any_key_work(
    issuer: Any, make_authenticator: Any, issuer_config: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer))
    fetches = (issuer.discovery_fetches, issuer.jwks_fetches)
    with pytest.raises(AuthnError) as caught:
        await authenticator.authenticate([], METHOD)
    assert isinstance(caught.value, Unauthenticated)
    assert caught.value.reason == "missing_token"
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == fetches


def test_another_scheme_gets_a_challenge_without_error_code_rfc6750_3_1() -> None:
    # RFC 6750 §3.1: a client that "attempted using an unsupported authentication method" lacks
    # bearer credentials, so the challenge names the scheme and carries no error code.
    with pytest.raises(Unauthenticated) as caught:
        extract_bearer(["Basic YWxpY2U6c2VjcmV0"], max_token_bytes=8192)
    assert caught.value.reason == "unsupported_scheme"
    assert challenge(caught.value) == "Bearer"
