"""Authenticator.verify/authenticate on arbitrary tokens, against the real issuer over HTTP.

Arbitrary text, and structured tokens: arbitrary JSON headers and claims (mostly plausible
members, so signature and claim checks run), signed by the issuer's real key or not. The
only outcomes allowed are a Principal or a documented AuthnError leaf.
"""

from __future__ import annotations

from typing import Any

import pytest
from fuzz_strategies import (
    DOCUMENTED_REASONS,
    FUZZ_ALGORITHMS,
    FUZZ_NOW,
    SCOPED_METHOD,
    b64url,
    claims_for,
    headers_for,
)
from hypothesis import event, example, given
from hypothesis import strategies as st
from jwcrypto.jwa import JWA

from jwt_authn import Authenticator, KeySetUnavailable, PermissionDenied, Principal, Unauthenticated
from jwt_authn.testing import LoopbackIssuer, encode_segment

pytestmark = pytest.mark.asyncio(loop_scope="module")

_ALLOWED = (Unauthenticated, PermissionDenied, KeySetUnavailable)


async def _verify(authenticator: Authenticator, token: str) -> Principal | None:
    try:
        principal = await authenticator.verify(token)
    except _ALLOWED as err:
        assert err.reason in DOCUMENTED_REASONS, err.reason
        event(err.reason)  # --hypothesis-show-statistics shows how deep the examples went
        return None
    event("accepted")
    return principal


def _sign(header: dict[str, Any], payload_segment: str, issuer: LoopbackIssuer, how: str, junk: bytes) -> str:
    header_segment = encode_segment(header)
    signing_input = f"{header_segment}.{payload_segment}"
    alg = header.get("alg")
    if how == "real" and isinstance(alg, str) and alg in FUZZ_ALGORITHMS:
        signature = JWA.signing_alg(alg).sign(issuer.tokens.keys[alg], signing_input.encode())
    elif how == "empty":
        signature = b""
    else:
        signature = junk
    return f"{signing_input}.{b64url(signature)}"


@given(
    token=st.text(max_size=300)
    | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=300)
)
@example(token="")
@example(token="..")
@example(token="a.b.c.d.e")
@example(token="eyJhbGciOiJub25lIn0.e30.")
async def test_verify_arbitrary_text(token: str, fuzz_authenticator: Authenticator) -> None:
    await _verify(fuzz_authenticator, token)


@given(data=st.data(), how=st.sampled_from(["real", "real", "junk", "empty"]), junk=st.binary(max_size=140))
async def test_verify_arbitrary_structured_tokens(
    data: st.DataObject, how: str, junk: bytes, fuzz_issuer: LoopbackIssuer, fuzz_authenticator: Authenticator
) -> None:
    kids = {alg: fuzz_issuer.kid(alg) for alg in FUZZ_ALGORITHMS}
    header = data.draw(headers_for(kids), label="header")
    claims = data.draw(claims_for(fuzz_issuer.url, "secureroute", FUZZ_NOW), label="claims")
    token = _sign(header, encode_segment(claims), fuzz_issuer, how, junk)
    principal = await _verify(fuzz_authenticator, token)
    if principal is not None:
        # Accepted: it must really be the issuer's, for us, and in its time window.
        assert how == "real" and header["alg"] in FUZZ_ALGORITHMS
        assert header.get("kid") in (None, fuzz_issuer.kid(header["alg"]))
        assert "crit" not in header and "enc" not in header
        assert claims["iss"] == fuzz_issuer.url
        assert claims["exp"] + 30 >= FUZZ_NOW
        aud = claims.get("aud")
        assert aud == "secureroute" or (isinstance(aud, list) and "secureroute" in aud)


@given(data=st.data(), values_shape=st.sampled_from(["one", "two", "scheme"]))
async def test_authenticate_arbitrary_claims_on_a_scoped_method(
    data: st.DataObject, values_shape: str, fuzz_issuer: LoopbackIssuer, fuzz_authenticator: Authenticator
) -> None:
    """Signed tokens with arbitrary scope/roles claims on a method that needs both."""
    alg = data.draw(st.sampled_from(FUZZ_ALGORITHMS), label="alg")
    claims = data.draw(claims_for(fuzz_issuer.url, "secureroute", FUZZ_NOW), label="claims")
    token = _sign({"alg": alg, "kid": fuzz_issuer.kid(alg)}, encode_segment(claims), fuzz_issuer, "real", b"")
    values = {"one": [f"Bearer {token}"], "two": [f"Bearer {token}"] * 2, "scheme": [f"bEaReR {token}"]}[
        values_shape
    ]
    try:
        principal = await fuzz_authenticator.authenticate(values, SCOPED_METHOD)
    except _ALLOWED as err:
        assert err.reason in DOCUMENTED_REASONS, err.reason
        event(err.reason)
        return
    event("accepted")
    assert principal is not None
    assert "read" in principal.scopes and "admin" in principal.roles
