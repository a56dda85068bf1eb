"""Hypothesis strategies for untrusted input: JSON values, token headers and claims, JWKS entries.

Every URL a strategy can produce is either on loopback or not a fetchable https URL: the
fuzzers must never make the code under test reach for another host.

Usage:
    @given(value=json_values)
    def test_x(value: object) -> None: ...
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "AUDIENCE",
    "DELETE",
    "DOCUMENTED_REASONS",
    "FUZZ_ALGORITHMS",
    "FUZZ_NOW",
    "SCOPED_METHOD",
    "b64url",
    "claims_for",
    "discovery_documents",
    "headers_for",
    "json_objects",
    "json_texts_with_pairs",
    "json_values",
    "jwk_entries",
]

AUDIENCE = "secureroute"
#: The fuzz issuer's algorithms: one of each key type, RSA generated once per module.
FUZZ_ALGORITHMS = ("ES256", "EdDSA", "RS256")
#: The fuzz authenticator's frozen clock (strategies must not depend on the wall clock).
FUZZ_NOW = 1_800_000_000
#: A method that needs a scope and a role, so PermissionDenied is reachable too.
SCOPED_METHOD = "/fuzz.v1.Fuzz/Scoped"

#: Every ``reason`` jwt_authn documents; a fuzzer seeing another one has found an undocumented path.
DOCUMENTED_REASONS = frozenset(
    {
        "missing_token",
        "malformed_authorization",
        "unsupported_scheme",
        "token_too_large",
        "encrypted_token_not_accepted",
        "malformed_token",
        "unsupported_critical_header",
        "wrong_token_type",
        "missing_signature",
        "issuer_mismatch",
        "algorithm_not_allowed",
        "key_set_unavailable",
        "no_matching_key",
        "key_algorithm_mismatch",
        "unknown_kid",
        "invalid_signature",
        "malformed_claims",
        "missing_claim",
        "token_expired",
        "token_not_yet_valid",
        "audience_mismatch",
        "insufficient_scope",
        "insufficient_role",
    }
)

ALGORITHM_NAMES = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    "none", "None", "HS256", "HS512", "ES256K", "RSA-OAEP", "dir", "",
)  # fmt: skip

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()  # NaN and ±Infinity included: json.dumps writes them, strict parsing must refuse them
    | st.text(max_size=24)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=16,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_texts() -> st.SearchStrategy[str]:
    return st.binary(max_size=80).map(b64url) | st.text(max_size=40)


#: A mutation that removes the member instead of setting it.
DELETE = object()


def _mutated(
    base: st.SearchStrategy[dict[str, Any]], members: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with zero to three members deleted, set to a plausible value, or set to any JSON
    (an unmutated or mildly mutated object gets through the cheap checks to the deep ones)."""
    names = st.sampled_from(sorted(members)) | st.text(max_size=6)
    mutation = names.flatmap(
        lambda name: st.tuples(st.just(name), st.just(DELETE) | members.get(name, json_values) | json_values)
    )

    def apply(draw: tuple[dict[str, Any], list[tuple[str, Any]]]) -> dict[str, Any]:
        result, changes = dict(draw[0]), draw[1]
        for name, value in changes:
            if value is DELETE:
                result.pop(name, None)
            else:
                result[name] = value
        return result

    return st.tuples(base, st.lists(mutation, max_size=3)).map(apply)


def headers_for(kids: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    """JOSE headers: a valid one (alg -> its kid) with up to three members changed."""
    base = st.sampled_from(sorted(kids)).map(lambda alg: {"alg": alg, "kid": kids[alg], "typ": "at+jwt"})
    return _mutated(
        base,
        {
            "alg": st.sampled_from(ALGORITHM_NAMES),
            "kid": st.sampled_from(sorted(kids.values())) | st.text(max_size=8),
            "typ": st.sampled_from(["at+jwt", "JWT", "application/at+jwt", "JWE", "at+JWT"]),
            "crit": st.just(["exp"]) | st.just([]),
            "enc": st.just("A128GCM"),
            "jku": st.just("http://127.0.0.1:9/jwks"),
            "jwk": st.just({"kty": "oct", "k": "AAAA"}),
            "zip": st.just("DEF"),
            "b64": st.booleans(),
        },
    )


def claims_for(issuer: str, audience: str, now: int) -> st.SearchStrategy[dict[str, Any]]:
    """Access-token claims: valid ones for ``now`` with up to three members changed."""
    times = st.integers(min_value=now - 10_000, max_value=now + 10_000)
    base = st.just(
        {"iss": issuer, "sub": "alice", "aud": audience, "iat": now, "exp": now + 300, "scope": "read",
         "realm_access": {"roles": ["admin"]}}
    )  # fmt: skip
    return _mutated(
        base,
        {
            "iss": st.sampled_from([issuer, issuer + "/", issuer.upper(), ""]),
            "aud": st.sampled_from([audience, "other"])
            | st.lists(st.sampled_from([audience, "other"]), max_size=3),
            "exp": times,
            "nbf": times,
            "iat": times,
            "sub": st.sampled_from(["alice", ""]),
            "scope": st.sampled_from(["read", "read write", "", "write"])
            | st.lists(st.text(max_size=6), max_size=3),
            "scp": st.lists(st.sampled_from(["read", "write"]), max_size=2),
            "roles": st.lists(st.sampled_from(["admin", "user"]), max_size=2),
            "realm_access": st.fixed_dictionaries({}, optional={"roles": json_values | st.just(["admin"])}),
        },
    )


def jwk_entries(real_keys: Sequence[dict[str, Any]] = ()) -> st.SearchStrategy[Any]:
    """JWKS entries: real public keys, real keys with members replaced, or key-shaped junk."""
    shaped = st.fixed_dictionaries(
        {},
        optional={
            "kty": st.sampled_from(["RSA", "EC", "OKP", "oct", "rsa", ""]) | json_values,
            "crv": st.sampled_from(["P-256", "P-384", "P-521", "Ed25519", "Ed448", "X25519", "secp256k1"])
            | json_values,
            "x": _b64_texts(),
            "y": _b64_texts(),
            "n": _b64_texts(),
            "e": st.sampled_from(["AQAB", "Aw", ""]) | _b64_texts(),
            "kid": st.text(max_size=8) | json_values,
            "alg": st.sampled_from(ALGORITHM_NAMES) | json_values,
            "use": st.sampled_from(["sig", "enc"]) | json_values,
            "key_ops": st.just(["verify"]) | json_values,
            "d": _b64_texts(),
            "k": _b64_texts(),
        },
    )
    options: list[st.SearchStrategy[Any]] = [shaped, json_values]
    if real_keys:
        real = st.sampled_from(list(real_keys))
        options.append(real)
        options.append(
            st.tuples(
                real, st.sampled_from(["kty", "crv", "x", "y", "n", "e", "kid", "alg", "use"]), json_values
            ).map(lambda t: {**t[0], t[1]: t[2]})
        )
    return st.one_of(options)


def json_texts_with_pairs() -> st.SearchStrategy[tuple[str, list[tuple[str, Any]]]]:
    """An object's JSON text written member by member (so keys may repeat), with its pairs."""
    pairs = st.lists(
        st.tuples(st.sampled_from(["a", "b", "alg", "exp"]) | st.text(max_size=4), json_values), max_size=6
    )
    return pairs.map(lambda p: ("{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in p) + "}", p))


def discovery_documents(issuer: str, jwks_uri: str) -> st.SearchStrategy[dict[str, Any]]:
    """Discovery documents whose URLs stay on loopback (or are not fetchable at all)."""
    loopback_urls = st.sampled_from(
        [
            jwks_uri,
            jwks_uri + "?x=1",
            issuer + "/nowhere",
            "http://127.0.0.1:1/jwks",  # nothing listens on port 1
            "http://[::1",  # urlsplit raises ValueError
            "ftp://127.0.0.1/jwks",
            "http:///jwks",
            "file:///etc/passwd",
            "",
        ]
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "issuer": st.just(issuer) | st.just(issuer + "/") | json_values,
            "jwks_uri": loopback_urls | st.integers() | st.none() | st.lists(loopback_urls, max_size=2),
        },
    ).flatmap(lambda doc: json_objects.map(lambda extra: {**extra, **doc}))
