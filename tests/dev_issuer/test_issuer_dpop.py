"""DPoP-bound tokens from the development issuer (RFC 9449 §5): a token request with a valid
``DPoP`` proof gets ``cnf.jkt`` and ``token_type: DPoP``; every proof check at the token endpoint
is a named vector that fails if the check is removed (the proof is valid but for the one thing
the vector breaks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from issuer_helpers import DEV_CLIENT, Answer, Callback, FakeClock, RunningIssuer, basic, pkce_pair
from jwcrypto import jwk
from test_issuer_authorization_code import CodeFlow

from jwt_authn.dpop_client import DPoPKey
from jwt_authn.testing import encode_segment, generate_key, make_dpop_proof

PostToken = Callable[..., Awaitable[Answer]]
Verify = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]
FORM = {"grant_type": "client_credentials", "sub": "alice"}


@dataclass
class Case:
    url: str
    now: float
    key: jwk.JWK
    other: jwk.JWK

    def proof(self, **kwargs: Any) -> str:
        kwargs.setdefault("htm", "POST")
        kwargs.setdefault("htu", f"{self.url}/token")
        kwargs.setdefault("iat", self.now)
        return make_dpop_proof(self.key, **kwargs)


def _header_swapped(case: Case, **changes: Any) -> str:
    """A valid proof whose header is replaced (its signature then fails, but these header checks
    come first: the vector's expected reason shows which check answered)."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": case.key.export_public(as_dict=True), **changes}
    _, payload, signature = case.proof().split(".")
    return f"{encode_segment(header)}.{payload}.{signature}"


@dataclass(frozen=True)
class Vector:
    id: str
    #: The DPoP header values of the token request.
    build: Callable[[Case], list[str]]
    #: "ok", or the start of the expected error_description.
    expect: str


VECTORS = [
    # {"typ":"dpop+jwt","alg":"ES256","jwk":{EC P-256 public}} . {"jti","htm":"POST","htu":".../token","iat"}
    Vector("valid", lambda c: [c.proof()], "ok"),
    # RFC 3986 normalisation: scheme and host case-insensitive; query and fragment are not part of htu
    Vector("htu_case_and_query", lambda c: [c.proof(htu=f"{c.url.upper()}/token?x=1#f")], "ok"),
    Vector("two_proofs", lambda c: [c.proof(), c.proof()], "more than one DPoP header"),
    Vector("not_a_jws", lambda c: ["not-a-jws"], "the proof is not a compact JWS"),
    Vector("too_large", lambda c: [c.proof(claims={"pad": "x" * 5000})], "the proof is too large"),
    # {"typ":"JWT",...}
    Vector("typ_jwt", lambda c: [c.proof(headers={"typ": "JWT"})], "the proof's typ is not dpop+jwt"),
    # {"alg":"HS256",...}: symmetric, never
    Vector("alg_hs256", lambda c: [_header_swapped(c, alg="HS256")], "the proof's alg is not one of"),
    # {"jwk":{..."d":...}}: a private key in the header
    Vector(
        "private_jwk",
        lambda c: [c.proof(headers={"jwk": c.key.export_private(as_dict=True)})],
        "the proof's jwk holds a private key",
    ),
    # {"alg":"EdDSA","jwk":{EC P-256}}
    Vector("jwk_not_for_alg", lambda c: [_header_swapped(c, alg="EdDSA")], "the proof's jwk does not fit"),
    Vector("no_jwk", lambda c: [c.proof(drop=("jwk",))], "the proof's header has no jwk"),
    # header names key A, signature by key B
    Vector(
        "signed_by_another_key",
        lambda c: [c.proof(sign_with=c.other)],
        "the proof's signature does not verify",
    ),
    Vector("htm_get", lambda c: [c.proof(htm="GET")], "the proof's htm is not POST"),
    Vector(
        "htu_authorize", lambda c: [c.proof(htu=f"{c.url}/authorize")], "the proof's htu is not the token"
    ),
    Vector("htu_other_port", lambda c: [c.proof(htu=f"{c.url}1/token")], "the proof's htu is not the token"),
    Vector("iat_old", lambda c: [c.proof(iat=c.now - 61)], "the proof's iat is outside"),
    Vector("iat_future", lambda c: [c.proof(iat=c.now + 6)], "the proof's iat is outside"),
    Vector("iat_string", lambda c: [c.proof(claims={"iat": "now"})], "the proof's iat is not a number"),
    Vector("no_jti", lambda c: [c.proof(drop=("jti",))], "the proof's jti is missing"),
]


@pytest.fixture
def case(issuer: RunningIssuer, clock: FakeClock) -> Case:
    return Case(issuer.url, clock(), generate_key("ES256"), generate_key("ES256"))


@pytest.mark.parametrize("vector", VECTORS, ids=[v.id for v in VECTORS])
async def test_token_request_proof_vectors(
    vector: Vector, case: Case, post_token: PostToken, client: aiohttp.ClientSession, verify: Verify
) -> None:
    headers = [*DEV_CLIENT.items(), *(("DPoP", proof) for proof in vector.build(case))]
    async with client.post(f"{case.url}/token", data=FORM, headers=headers) as response:
        body = await response.json()
    if vector.expect == "ok":
        assert response.status == 200, body
        assert body["token_type"] == "DPoP"
        _, claims = await verify(case.url, body["access_token"])
        assert claims["cnf"] == {"jkt": case.key.thumbprint()}
        return
    assert (response.status, body["error"]) == (400, "invalid_dpop_proof"), body
    assert body["error_description"].startswith(vector.expect)
    assert response.headers["Cache-Control"] == "no-store"


async def test_without_a_proof_the_token_is_a_bearer_token(
    issuer: RunningIssuer, post_token: PostToken, verify: Verify
) -> None:
    answer = await post_token(issuer.url, FORM, headers=DEV_CLIENT)
    assert answer.body["token_type"] == "Bearer"
    _, claims = await verify(issuer.url, answer.body["access_token"])
    assert "cnf" not in claims


async def test_a_proof_is_accepted_once(case: Case, client: aiohttp.ClientSession) -> None:
    proof = case.proof()
    statuses = []
    for _ in range(2):
        async with client.post(f"{case.url}/token", data=FORM, headers={**DEV_CLIENT, "DPoP": proof}) as r:
            statuses.append((r.status, (await r.json()).get("error_description")))
    assert statuses == [(200, None), (400, "the proof was used before")]


async def test_the_clients_own_key_type_gets_bound_tokens(
    issuer: RunningIssuer, clock: FakeClock, post_token: PostToken, verify: Verify
) -> None:
    """Proofs from the guard's client module, with each algorithm it offers."""
    for alg in ("ES256", "EdDSA", "PS256"):
        key = DPoPKey.generate(alg, clock=clock)
        headers = {**DEV_CLIENT, "DPoP": key.proof("POST", f"{issuer.url}/token")}
        answer = await post_token(issuer.url, FORM, headers=headers)
        assert answer.status == 200, answer.body
        _, claims = await verify(issuer.url, answer.body["access_token"])
        assert claims["cnf"]["jkt"] == key.jkt


async def test_discovery_advertises_the_proof_algorithms(
    issuer: RunningIssuer, client: aiohttp.ClientSession
) -> None:
    async with client.get(f"{issuer.url}/.well-known/openid-configuration") as response:
        document = await response.json()
    assert document["dpop_signing_alg_values_supported"] == [
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
        "PS256",
        "RS256",
    ]


@pytest.fixture
def flow(
    issuer: RunningIssuer, client: aiohttp.ClientSession, callback: Callback, post_token: PostToken
) -> CodeFlow:
    return CodeFlow(issuer, client, callback, post_token)


async def test_the_code_flow_gets_a_bound_token_and_a_bad_proof_keeps_the_code(
    flow: CodeFlow, post_token: PostToken, clock: FakeClock, verify: Verify
) -> None:
    issuer, callback = flow.issuer, flow.callback
    verifier, challenge = pkce_pair()
    received = await flow.sign_in(challenge)
    key = DPoPKey.generate(clock=clock)
    form = {
        "grant_type": "authorization_code",
        "code": received["code"],
        "code_verifier": verifier,
        "redirect_uri": callback.url,
        "client_id": "postman",
    }
    headers = basic("postman", "")
    wrong = await post_token(
        issuer.url, form, headers={**headers, "DPoP": key.proof("POST", f"{issuer.url}/x")}
    )
    assert (wrong.status, wrong.body["error"]) == (400, "invalid_dpop_proof")
    answer = await post_token(
        issuer.url, form, headers={**headers, "DPoP": key.proof("POST", f"{issuer.url}/token")}
    )
    assert answer.status == 200, answer.body
    assert answer.body["token_type"] == "DPoP"
    _, claims = await verify(issuer.url, answer.body["access_token"])
    assert claims["cnf"] == {"jkt": key.jkt}
    assert claims["sub"] == "alice"
