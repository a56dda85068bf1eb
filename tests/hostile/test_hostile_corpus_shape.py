"""The corpus table itself: big enough, uniquely named, documented, and covering what it must."""

from __future__ import annotations

from collections import Counter

from corpus import CASES, NOT_SENT


def test_corpus_is_large_named_and_documented() -> None:
    ids = [case.id for case in CASES]
    assert len(CASES) >= 80
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]
    for case in CASES:
        assert case.doc and case.grpc in ("OK", "UNAUTHENTICATED", "RESOURCE_EXHAUSTED", NOT_SENT), case.id
        assert case.http and all(100 <= status < 500 for status in case.http), case.id
        assert (case.grpc == "UNAUTHENTICATED") == (case.reason is not None), case.id
    positive = {case.id for case in CASES if case.grpc == "OK"}
    for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"):
        assert f"positive-{alg}" in positive


#: One id per attack the corpus must cover (issue 5's list), so a refactor cannot drop one.
REQUIRED = (
    "alg-none-unsigned", "alg-None-unsigned", "alg-NONE-unsigned", "alg-nOnE-unsigned",
    "alg-none-with-signature", "alg-nOnE-with-signature",
    "hs256-public-key-pem-as-secret", "hs256-public-key-jwk-json-as-secret",
    "hs256-public-key-raw-n-as-secret",
    "hs384-public-key-pem-as-secret", "hs512-public-key-pem-as-secret",
    "kid-unknown", "kid-missing-attacker-key", "kid-path-traversal", "kid-sql-injection", "kid-10k-chars",
    "kid-number", "jku-attacker-jwks", "x5u-attacker-cert", "jwk-embedded-attacker-key",
    "x5c-attacker-self-signed", "attacker-key-reusing-es256-kid", "tampered-header", "tampered-payload-sub",
    "tampered-signature-bit", "signature-stripped", "two-segments", "one-segment", "four-segments",
    "six-segments", "jwe-five-parts", "jwe-five-parts-zip-def", "asterisk-in-token", "padding-at-end",
    "padding-inside", "space-inside-token", "tab-inside-token", "nul-inside-token", "header-not-json",
    "header-json-array", "header-json-string", "header-json-number", "header-duplicate-alg",
    "payload-duplicate-sub", "payload-duplicate-exp", "payload-exp-1e400", "payload-exp-10-pow-80",
    "claim-exp-string", "claim-exp-bool", "claim-exp-null", "claim-exp-array", "payload-exp-nan",
    "payload-exp-infinity", "expired", "nbf-in-the-future", "iat-in-the-future", "iss-other-issuer",
    "iss-prefix", "iss-suffix", "iss-trailing-slash", "iss-uppercase-scheme", "aud-other",
    "aud-list-without-ours", "aud-list-with-ours", "aud-number", "crit-unknown-extension",
    "es256-zero-signature", "es256-high-s", "es256-signature-63-bytes", "rs256-signature-truncated",
    "rs256-signature-extended", "token-100-kb", "scheme-lowercase", "scheme-uppercase", "scheme-basic",
    "scheme-only", "scheme-and-space-only", "two-tokens-one-value", "two-authorization-headers",
    "non-ascii-inside-token",
)  # fmt: skip


def test_corpus_covers_every_required_attack() -> None:
    ids = {case.id for case in CASES}
    assert not [name for name in REQUIRED if name not in ids]
