"""DPoP (RFC 9449) through real servers: every proof check of §4.3 as a named vector, run on the
aiohttp middleware and on the three gRPC server kinds (grpc.aio async, grpc.aio with plain ``def``
handlers, threaded). Each vector fails if its check is removed: the proof is valid except for
the one thing the vector breaks, and the expected reason is that check's own.

The clock is the suite's hand-driven ``Clock``: the proofs' ``iat`` come from it, never from the
wall clock.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from dpop_servers import KINDS, METHOD, Answer, Server, start
from jwcrypto import jwk

from jwt_authn import AuthnConfig, DPoPConfig, IssuerConfig, Policy
from jwt_authn.dpop import normalize_uri
from jwt_authn.sender import is_trusted_peer, peer_address
from jwt_authn.testing import LoopbackIssuer, encode_segment, generate_key, make_dpop_proof


@dataclass
class Case:
    """What a vector builds its request from."""

    server: Server
    issuer: LoopbackIssuer
    now: float
    key: jwk.JWK
    other_key: jwk.JWK
    #: A token bound to ``key`` (cnf.jkt).
    token: str

    def proof(self, **kwargs: Any) -> str:
        kwargs.setdefault("htm", self.server.htm)
        kwargs.setdefault("htu", self.server.htu)
        kwargs.setdefault("iat", self.now)
        kwargs.setdefault("token", self.token)
        return make_dpop_proof(self.key, **kwargs)

    def dpop(self, *proofs: str) -> tuple[str, tuple[str, ...]]:
        return f"DPoP {self.token}", proofs


@dataclass(frozen=True)
class Vector:
    id: str
    #: (authorization, proofs) for the call.
    build: Callable[[Case], tuple[str, tuple[str, ...]]]
    #: "ok" or the expected stable reason.
    reason: str


def _header_of(case: Case, **changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": case.key.export_public(as_dict=True)}
    header.update(changes)
    return header


def _payload_of(case: Case, **changes: Any) -> dict[str, Any]:
    payload = json.loads(base64.urlsafe_b64decode(case.proof().split(".")[1] + "==").decode())
    payload.update(changes)
    return payload


def _tampered_payload(case: Case) -> str:
    header, _, signature = case.proof().split(".")
    return f"{header}.{encode_segment(_payload_of(case, htu=case.server.htu + 'x'))}.{signature}"


VECTORS = [
    # header {"typ":"dpop+jwt","alg":"ES256","jwk":{..key..}} . {"jti","htm","htu","iat","ath"}: all good
    Vector("valid", lambda c: c.dpop(c.proof()), "ok"),
    # --- exactly one proof --------------------------------------------------------------------
    Vector("no_proof", lambda c: c.dpop(), "dpop_proof_missing"),
    Vector("two_proofs", lambda c: c.dpop(c.proof(), c.proof()), "dpop_proof_multiple"),
    # --- size: a 5 KiB claim makes the proof larger than max_proof_bytes (4096) ------------------
    Vector("too_large", lambda c: c.dpop(c.proof(claims={"pad": "x" * 5000})), "dpop_proof_too_large"),
    # --- compact JWS --------------------------------------------------------------------------
    # header . payload (no signature segment)
    Vector("two_segments", lambda c: c.dpop(c.proof().rsplit(".", 1)[0]), "dpop_proof_malformed"),
    # five segments: a JWE shape
    Vector("five_segments", lambda c: c.dpop(c.proof() + ".a.b"), "dpop_proof_malformed"),
    # header is not base64url
    Vector(
        "header_not_b64url", lambda c: c.dpop("!!!." + c.proof().split(".", 1)[1]), "dpop_proof_malformed"
    ),
    # --- typ ----------------------------------------------------------------------------------
    # {"typ":"JWT",...}
    Vector("typ_jwt", lambda c: c.dpop(c.proof(headers={"typ": "JWT"})), "dpop_proof_wrong_type"),
    # {"alg":"ES256","jwk":{..}} without typ
    Vector("typ_missing", lambda c: c.dpop(c.proof(drop=("typ",))), "dpop_proof_wrong_type"),
    # --- alg: asymmetric, from the allowlist ----------------------------------------------------
    # {"typ":"dpop+jwt","alg":"none",...} . payload . (empty)
    Vector(
        "alg_none",
        lambda c: c.dpop(encode_segment(_header_of(c, alg="none")) + "." + c.proof().split(".")[1] + "."),
        "dpop_algorithm_not_allowed",
    ),
    # {"alg":"HS256",...}: a MAC keyed with anything would "verify"
    Vector(
        "alg_hs256",
        lambda c: c.dpop(
            encode_segment(_header_of(c, alg="HS256")) + "." + c.proof().split(".")[1] + ".c2ln"
        ),
        "dpop_algorithm_not_allowed",
    ),
    # --- jwk: public, and the signature verifies with it --------------------------------------
    # {"typ":"dpop+jwt","alg":"ES256"} without jwk
    Vector("jwk_missing", lambda c: c.dpop(c.proof(drop=("jwk",))), "dpop_key_invalid"),
    # {"jwk":{..,"d":"..."}}: the private key in the header
    Vector(
        "jwk_private",
        lambda c: c.dpop(c.proof(headers={"jwk": c.key.export_private(as_dict=True)})),
        "dpop_key_invalid",
    ),
    # {"jwk":{"kty":"oct","k":"..."}}
    Vector(
        "jwk_symmetric",
        lambda c: c.dpop(c.proof(headers={"jwk": {"kty": "oct", "k": "c2VjcmV0"}})),
        "dpop_key_invalid",
    ),
    # {"alg":"ES256","jwk":{P-384 key}}: a key that does not fit the alg
    Vector(
        "jwk_wrong_curve",
        lambda c: c.dpop(c.proof(headers={"jwk": generate_key("ES384").export_public(as_dict=True)})),
        "dpop_key_invalid",
    ),
    # header names key A, signed by key B
    Vector(
        "signed_by_another_key", lambda c: c.dpop(c.proof(sign_with=c.other_key)), "dpop_signature_invalid"
    ),
    # payload changed after signing
    Vector("payload_tampered", lambda c: c.dpop(_tampered_payload(c)), "dpop_signature_invalid"),
    # --- htm ----------------------------------------------------------------------------------
    Vector("htm_other", lambda c: c.dpop(c.proof(htm="DELETE")), "dpop_htm_mismatch"),
    Vector("htm_lower_case", lambda c: c.dpop(c.proof(htm=c.server.htm.lower())), "dpop_htm_mismatch"),
    Vector("htm_missing", lambda c: c.dpop(c.proof(drop=("htm",))), "dpop_htm_mismatch"),
    # --- htu ----------------------------------------------------------------------------------
    Vector("htu_other_path", lambda c: c.dpop(c.proof(htu=c.server.htu + "x")), "dpop_htu_mismatch"),
    Vector(
        "htu_other_scheme",
        lambda c: c.dpop(c.proof(htu=c.server.htu.replace("http://", "https://"))),
        "dpop_htu_mismatch",
    ),
    Vector("htu_missing", lambda c: c.dpop(c.proof(drop=("htu",))), "dpop_htu_mismatch"),
    # RFC 3986 normalisation: scheme and host case-insensitive; query and fragment ignored
    Vector(
        "htu_upper_case_scheme_and_host",
        lambda c: c.dpop(c.proof(htu=c.server.htu.replace("http://127.0.0.1", "HTTP://127.0.0.1"))),
        "ok",
    ),
    Vector("htu_query_and_fragment", lambda c: c.dpop(c.proof(htu=c.server.htu + "?a=1#f")), "ok"),
    # --- iat: within [now - 60 s, now + 5 s] -----------------------------------------------------
    Vector("iat_too_old", lambda c: c.dpop(c.proof(iat=c.now - 61)), "dpop_proof_expired"),
    Vector("iat_oldest_accepted", lambda c: c.dpop(c.proof(iat=c.now - 60)), "ok"),
    Vector("iat_future", lambda c: c.dpop(c.proof(iat=c.now + 6)), "dpop_proof_not_yet_valid"),
    Vector("iat_missing", lambda c: c.dpop(c.proof(drop=("iat",))), "dpop_proof_malformed"),
    Vector("iat_string", lambda c: c.dpop(c.proof(claims={"iat": str(int(c.now))})), "dpop_proof_malformed"),
    # --- jti ----------------------------------------------------------------------------------
    Vector("jti_missing", lambda c: c.dpop(c.proof(drop=("jti",))), "dpop_proof_malformed"),
    Vector("jti_empty", lambda c: c.dpop(c.proof(claims={"jti": ""})), "dpop_proof_malformed"),
    # --- ath ----------------------------------------------------------------------------------
    Vector("ath_missing", lambda c: c.dpop(c.proof(token=None)), "dpop_ath_mismatch"),
    Vector("ath_of_another_token", lambda c: c.dpop(c.proof(token=c.token + "x")), "dpop_ath_mismatch"),
    # {..,"ath":"é…"}: non-ASCII text where a hash belongs (a constant-time compare of str would raise)
    Vector("ath_not_ascii", lambda c: c.dpop(c.proof(claims={"ath": "é" * 43})), "dpop_ath_mismatch"),
    # --- cnf.jkt: the token is bound to key A; a valid proof by key B ---------------------------
    Vector(
        "proof_by_another_key",
        lambda c: c.dpop(
            make_dpop_proof(c.other_key, htm=c.server.htm, htu=c.server.htu, iat=c.now, token=c.token)
        ),
        "dpop_key_mismatch",
    ),
    # a token whose cnf.jkt is non-ASCII text, with a good proof by the caller's key
    Vector(
        "cnf_jkt_not_ascii",
        lambda c: (
            f"DPoP {(odd := c.issuer.tokens.issue(now=c.now, claims={'cnf': {'jkt': 'é' * 43}}))}",
            (c.proof(token=odd),),
        ),
        "dpop_key_mismatch",
    ),
    # --- scheme vs binding ----------------------------------------------------------------------
    # an unbound token under the DPoP scheme, with a good proof
    Vector(
        "unbound_token_as_dpop",
        lambda c: (
            f"DPoP {(unbound := c.issuer.tokens.issue(now=c.now))}",
            (c.proof(token=unbound),),
        ),
        "token_not_dpop_bound",
    ),
    # the bound token as Bearer, with and without its proof (RFC 9449 §7.2)
    Vector("bound_token_as_bearer", lambda c: (f"Bearer {c.token}", ()), "bound_token_as_bearer"),
    Vector(
        "bound_token_as_bearer_with_proof",
        lambda c: (f"Bearer {c.token}", (c.proof(),)),
        "bound_token_as_bearer",
    ),
    # an unbound token as Bearer, a DPoP header beside it: a bearer token, accepted
    Vector(
        "unbound_bearer_with_stray_proof",
        lambda c: (f"Bearer {(unbound := c.issuer.tokens.issue(now=c.now))}", (c.proof(token=unbound),)),
        "ok",
    ),
]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def serve(
    kind: str, issuer: LoopbackIssuer, clock: Any, issuer_config: Callable[..., IssuerConfig]
) -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    """``await serve(dpop=DPoPConfig(...), **issuer_settings)``: a server of the current kind."""
    servers: list[Server] = []

    async def make(
        *,
        dpop: DPoPConfig | None = None,
        replay_store: Any = None,
        observer: Any = None,
        **issuer_settings: Any,
    ) -> Server:
        config = AuthnConfig(
            issuers=(issuer_config(issuer, **issuer_settings),),
            policy=Policy(),
            clock=clock,
            dpop=dpop or DPoPConfig(),
        )
        server = await start(kind, config, replay_store=replay_store, observer=observer)
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


def _case(server: Server, issuer: LoopbackIssuer, now: float) -> Case:
    key, other = generate_key("ES256"), generate_key("ES256")
    token = issuer.tokens.issue(now=now, claims={"cnf": {"jkt": key.thumbprint()}})
    return Case(server, issuer, now, key, other, token)


def _assert_answer(answer: Answer, reason: str, case: Case, proofs: tuple[str, ...]) -> None:
    if reason == "ok":
        assert (answer.outcome, answer.reason) == ("ok", "alice"), answer
        return
    assert (answer.outcome, answer.reason) == ("unauthenticated", reason), answer
    # Never an echo of the token or the proof.
    assert case.token not in answer.everything
    for proof in proofs:
        for segment in proof.split("."):
            assert len(segment) < 8 or segment not in answer.everything


@pytest.mark.parametrize("vector", VECTORS, ids=[v.id for v in VECTORS])
async def test_dpop_vector(serve: Any, issuer: LoopbackIssuer, clock: Any, vector: Vector) -> None:
    server = await serve()
    case = _case(server, issuer, clock.now)
    authorization, proofs = vector.build(case)
    answer = await server.call(authorization, proofs)
    _assert_answer(answer, vector.reason, case, proofs)


async def test_a_proof_is_accepted_once(serve: Any, issuer: LoopbackIssuer, clock: Any) -> None:
    server = await serve()
    case = _case(server, issuer, clock.now)
    proof = case.proof()
    assert (await server.call(f"DPoP {case.token}", [proof])).outcome == "ok"
    replayed = await server.call(f"DPoP {case.token}", [proof])
    assert (replayed.outcome, replayed.reason) == ("unauthenticated", "dpop_proof_replayed")
    # A fresh proof with the same (cached) token passes: the token is cached, the proof never.
    cache = server.core.token_cache
    hits, misses = cache.hits, cache.misses
    assert (await server.call(f"DPoP {case.token}", [case.proof()])).outcome == "ok"
    assert (cache.hits > hits, cache.misses) == (True, misses)


async def test_streaming_calls_check_the_proof(
    serve: Any, issuer: LoopbackIssuer, clock: Any, kind: str
) -> None:
    if kind == "http":
        pytest.skip("gRPC call shapes")
    server = await serve()
    case = _case(server, issuer, clock.now)
    for method in ("ServerStream", "Bidi"):
        htu = server.htu.replace("/Unary", f"/{method}")
        good = await server.call(f"DPoP {case.token}", [case.proof(htu=htu)], method=method)
        assert (good.outcome, good.reason) == ("ok", "alice")
        rejected_method = "BidiUnwritten" if method == "Bidi" else method
        bad = await server.call(f"DPoP {case.token}", [case.proof(htu=server.htu)], method=rejected_method)
        assert (bad.outcome, bad.reason) == ("unauthenticated", "dpop_htu_mismatch")


async def test_challenges_name_both_schemes_and_the_error_in_the_scheme_used(
    serve: Any, issuer: LoopbackIssuer, clock: Any
) -> None:
    server = await serve(dpop=DPoPConfig(algorithms=("ES256", "EdDSA")))
    case = _case(server, issuer, clock.now)
    bad_proof = await server.call(f"DPoP {case.token}", [case.proof(htm="PUT")])
    assert bad_proof.challenges == [
        "Bearer",
        'DPoP error="invalid_dpop_proof", error_description="dpop htm mismatch", algs="ES256 EdDSA"',
    ]
    bound_as_bearer = await server.call(f"Bearer {case.token}")
    assert bound_as_bearer.challenges == [
        'Bearer error="invalid_token", error_description="bound token as bearer"',
        'DPoP algs="ES256 EdDSA"',
    ]
    expired_token = issuer.tokens.issue(now=clock.now - 3600, claims={"cnf": {"jkt": case.key.thumbprint()}})
    expired = await server.call(f"DPoP {expired_token}", [case.proof(token=expired_token)])
    assert expired.challenges[1].startswith('DPoP error="invalid_token", error_description="token expired"')
    nothing = await server.call(None)
    assert nothing.challenges == ["Bearer", 'DPoP algs="ES256 EdDSA"']


async def test_the_proof_algorithm_allowlist_is_the_configured_one(
    serve: Any, issuer: LoopbackIssuer, clock: Any
) -> None:
    server = await serve(dpop=DPoPConfig(algorithms=("EdDSA",)))
    case = _case(server, issuer, clock.now)
    answer = await server.call(f"DPoP {case.token}", [case.proof()])  # ES256
    assert (answer.outcome, answer.reason) == ("unauthenticated", "dpop_algorithm_not_allowed")
    ed_key = generate_key("EdDSA")
    ed_token = issuer.tokens.issue(now=clock.now, claims={"cnf": {"jkt": ed_key.thumbprint()}})
    proof = make_dpop_proof(ed_key, htm=server.htm, htu=server.htu, iat=clock.now, token=ed_token)
    assert (await server.call(f"DPoP {ed_token}", [proof])).outcome == "ok"


async def test_required_sender_constraint_refuses_bearer_tokens(
    serve: Any, issuer: LoopbackIssuer, clock: Any
) -> None:
    server = await serve(require_sender_constrained=True)
    answer = await server.call(f"Bearer {issuer.tokens.issue(now=clock.now)}")
    assert (answer.outcome, answer.reason) == ("unauthenticated", "sender_constraint_required")
    case = _case(server, issuer, clock.now)
    assert (await server.call(f"DPoP {case.token}", [case.proof()])).outcome == "ok"
    # And by default (not required), a plain bearer token passes.
    default = await serve()
    assert (await default.call(f"Bearer {issuer.tokens.issue(now=clock.now)}")).outcome == "ok"


async def test_server_nonces(serve: Any, issuer: LoopbackIssuer, clock: Any) -> None:
    server = await serve(dpop=DPoPConfig(require_nonce=True, nonce_rotation_s=60))
    case = _case(server, issuer, clock.now)
    first = await server.call(f"DPoP {case.token}", [case.proof()])
    assert (first.outcome, first.reason) == ("unauthenticated", "use_dpop_nonce")
    assert first.nonce
    assert first.challenges[1].startswith('DPoP error="use_dpop_nonce"')
    accepted = await server.call(f"DPoP {case.token}", [case.proof(nonce=first.nonce)])
    assert accepted.outcome == "ok"
    if server.kind == "http":  # RFC 9449 §8.2: HTTP successes carry the current nonce too
        assert f"('DPoP-Nonce', '{first.nonce}')" in accepted.everything
    wrong = await server.call(f"DPoP {case.token}", [case.proof(nonce=first.nonce + "x")])
    assert (wrong.outcome, wrong.reason) == ("unauthenticated", "use_dpop_nonce")
    not_ascii = await server.call(f"DPoP {case.token}", [case.proof(nonce="é" * 32)])
    assert (not_ascii.outcome, not_ascii.reason) == ("unauthenticated", "use_dpop_nonce")
    # Rotated: the previous period's nonce still passes, the one before that no longer does.
    clock.advance(60)
    case.now = clock.now
    assert (await server.call(f"DPoP {case.token}", [case.proof(nonce=first.nonce)])).outcome == "ok"
    clock.advance(60)
    case.now = clock.now
    stale = await server.call(f"DPoP {case.token}", [case.proof(nonce=first.nonce)])
    assert (stale.outcome, stale.reason) == ("unauthenticated", "use_dpop_nonce")
    assert stale.nonce and stale.nonce != first.nonce


async def test_public_base_url_sets_the_expected_htu(
    serve: Any, issuer: LoopbackIssuer, clock: Any, kind: str
) -> None:
    server = await serve(dpop=DPoPConfig(public_base_urls=("https://API.example.com:443/prefix/",)))
    case = _case(server, issuer, clock.now)
    path = "/orders" if kind == "http" else METHOD
    public = f"https://api.example.com/prefix{path}"
    assert (await server.call(f"DPoP {case.token}", [case.proof(htu=public)])).outcome == "ok"
    local = await server.call(f"DPoP {case.token}", [case.proof()])  # the URL the server listens on
    assert (local.outcome, local.reason) == ("unauthenticated", "dpop_htu_mismatch")
    other_host = await server.call(f"DPoP {case.token}", [case.proof(htu=public.replace("api.", "evil."))])
    assert (other_host.outcome, other_host.reason) == ("unauthenticated", "dpop_htu_mismatch")


FACADE_URL = "https://shop.example.com/orders/7"


async def test_forwarded_method_and_url_only_from_trusted_proxies(
    serve: Any, issuer: LoopbackIssuer, clock: Any
) -> None:
    untrusting = await serve()
    case = _case(untrusting, issuer, clock.now)
    forwarded = (("dpop-htm", "GET"), ("dpop-htu", FACADE_URL))
    proof = case.proof(htm="GET", htu=FACADE_URL)
    answer = await untrusting.call(f"DPoP {case.token}", [proof], forwarded)
    assert (answer.outcome, answer.reason) == ("unauthenticated", "dpop_forwarding_untrusted")
    # A trusted network that does not hold the peer (127.0.0.1) is no better.
    elsewhere = await serve(dpop=DPoPConfig(trusted_proxies=("127.0.0.2/32",)))
    answer = await elsewhere.call(f"DPoP {case.token}", [case.proof(htm="GET", htu=FACADE_URL)], forwarded)
    assert (answer.outcome, answer.reason) == ("unauthenticated", "dpop_forwarding_untrusted")

    trusting = await serve(dpop=DPoPConfig(trusted_proxies=("127.0.0.0/8",)))
    assert (
        await trusting.call(f"DPoP {case.token}", [case.proof(htm="GET", htu=FACADE_URL)], forwarded)
    ).outcome == "ok"
    # The forwarded values are what the proof is checked against, then: a proof for the service's
    # own URL is refused, and so is one for another facade URL.
    own = await trusting.call(f"DPoP {case.token}", [case.proof()], forwarded)
    assert (own.outcome, own.reason) in {
        ("unauthenticated", "dpop_htm_mismatch"),
        ("unauthenticated", "dpop_htu_mismatch"),
    }
    other = await trusting.call(
        f"DPoP {case.token}", [case.proof(htm="GET", htu=FACADE_URL + "8")], forwarded
    )
    assert (other.outcome, other.reason) == ("unauthenticated", "dpop_htu_mismatch")
    twice = await trusting.call(
        f"DPoP {case.token}", [case.proof(htm="GET", htu=FACADE_URL)], (*forwarded, ("dpop-htu", FACADE_URL))
    )
    assert (twice.outcome, twice.reason) == ("unauthenticated", "dpop_forwarding_malformed")


@pytest.mark.parametrize(
    ("proof_htu", "request_uri", "same"),
    [
        ("https://api.example.com/a", "https://api.example.com/a", True),
        ("HTTPS://API.Example.COM/a", "https://api.example.com/a", True),  # scheme and host: any case
        ("https://api.example.com:443/a", "https://api.example.com/a", True),  # default port
        ("http://api.example.com:80/a", "http://api.example.com/a", True),
        ("https://api.example.com:8443/a", "https://api.example.com/a", False),
        ("https://api.example.com/a?x=1#f", "https://api.example.com/a", True),  # query, fragment ignored
        ("https://api.example.com/%7Euser/%2f", "https://api.example.com/~user/%2F", True),  # %-encoding
        ("https://api.example.com/a/./b/../c", "https://api.example.com/a/c", True),  # dot segments
        ("https://api.example.com", "https://api.example.com/", True),  # empty path
        ("https://api.example.com/A", "https://api.example.com/a", False),  # path: case-sensitive
        ("https://[::1]:443/a", "https://[::1]/a", True),
        ("https://user@api.example.com/a", "https://api.example.com/a", False),  # userinfo refused
        ("ftp://api.example.com/a", "ftp://api.example.com/a", False),  # http(s) only
        ("https://api.example.com:99999/a", "https://api.example.com/a", False),  # bad port
    ],
)
def test_htu_normalisation(proof_htu: str, request_uri: str, same: bool) -> None:
    normalized = normalize_uri(proof_htu)
    assert (normalized is not None and normalized == normalize_uri(request_uri)) is same


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"algorithms": ("HS256",)}, "dpop.algorithms: unsupported or unsafe: HS256"),
        ({"algorithms": "ES256"}, "dpop.algorithms: must be a collection of strings"),
        ({"algorithms": ()}, "dpop.algorithms: at least one algorithm is required"),
        ({"max_proof_bytes": 100}, "dpop.max_proof_bytes: must be between 512 and 65536"),
        ({"max_proof_age_s": 0}, "dpop.max_proof_age_s: must be between 1 and 3600 seconds"),
        ({"proof_leeway_s": -1}, "dpop.proof_leeway_s: must be between 0 and 300 seconds"),
        ({"nonce_rotation_s": 1}, "dpop.nonce_rotation_s: must be between 10 and 86400 seconds"),
        ({"nonce_secret": b"short"}, "dpop.nonce_secret: must be at least 32 bytes"),
        ({"public_base_urls": ("api.example.com",)}, "dpop.public_base_urls: not an http(s) base URL"),
        (
            {"public_base_urls": ("https://api.example.com/?q",)},
            "dpop.public_base_urls: not an http(s) base URL",
        ),
        (
            {"trusted_proxies": ("127.0.0.0/8", "facade")},
            "dpop.trusted_proxies: not an IP address or network",
        ),
        ({"trusted_proxies": "127.0.0.1"}, "dpop.trusted_proxies: must be a collection of strings"),
        ({"replay_store_size": 0}, "dpop.replay_store_size: must be at least 1"),
        (
            {"replay_store_size": 10, "replay_store_size_per_key": 11},
            "dpop.replay_store_size_per_key: must not",
        ),
    ],
)
def test_bad_dpop_settings_fail_at_construction_naming_the_setting(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        DPoPConfig(**settings)


def test_dpop_settings_are_normalised_and_frozen() -> None:
    config = DPoPConfig(
        trusted_proxies=["127.1.2.3", "127.168.0.0/16"], public_base_urls=["https://a.example"]
    )
    assert config.trusted_proxies == ("127.1.2.3/32", "127.168.0.0/16")
    assert config.public_base_urls == ("https://a.example",)
    assert config.replay_window_s == 65.0
    with pytest.raises(AttributeError):
        config.require_nonce = True  # type: ignore[misc]


class TracingRecorder:
    """An observer that records outcomes and verdicts (a TracingObserver)."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.verdicts: list[Any] = []

    def on_outcome(self, reason: str) -> None:
        self.outcomes.append(reason)

    def on_verdict(self, verdict: Any) -> None:
        self.verdicts.append(verdict)

    def key_fetch(self, issuer: str, step: str, url: str) -> Any:
        return contextlib.nullcontext()


async def test_each_call_is_one_outcome_named_by_its_reason(
    serve: Any, issuer: LoopbackIssuer, clock: Any
) -> None:
    """Also where a gRPC interceptor hands the decision to the handler: one outcome per call."""
    recorder = TracingRecorder()
    server = await serve(observer=recorder)
    case = _case(server, issuer, clock.now)
    proof = case.proof()
    await server.call(f"DPoP {case.token}", [proof])
    await server.call(f"DPoP {case.token}", [proof])
    await server.call(f"DPoP {case.token}", [case.proof(htm="PUT")])
    await server.call(f"Bearer {case.token}")
    assert recorder.outcomes == ["ok", "dpop_proof_replayed", "dpop_htm_mismatch", "bound_token_as_bearer"]
    assert [v.reason for v in recorder.verdicts] == recorder.outcomes
    assert all(v.issuer == issuer.url for v in recorder.verdicts)
    assert [v.subject for v in recorder.verdicts] == ["alice", None, None, None]
    assert case.token not in repr(recorder.verdicts)


class BrokenStore:
    """A replay store with a bug: every call raises something no one expected."""

    available = True

    async def remember(self, replay_key: bytes, jkt: str, expires_at: float, now: float) -> None:
        raise RuntimeError("a bug in a store")

    async def close(self) -> None:
        pass


async def test_a_broken_replay_store_refuses_and_is_never_a_server_error(
    serve: Any, issuer: LoopbackIssuer, clock: Any
) -> None:
    server = await serve(replay_store=BrokenStore())
    case = _case(server, issuer, clock.now)
    answer = await server.call(f"DPoP {case.token}", [case.proof()])
    assert (answer.outcome, answer.reason) == ("unauthenticated", "dpop_replay_store_unavailable")
    assert "a bug" not in answer.everything


async def test_several_spaces_after_the_dpop_scheme(serve: Any, issuer: LoopbackIssuer, clock: Any) -> None:
    """RFC 6750 §2.1's 1*SP holds for DPoP too, and a cached value gives the same token for ath."""
    server = await serve()
    case = _case(server, issuer, clock.now)
    for _ in range(2):  # the second call is a token-cache hit
        answer = await server.call(f"DPoP   {case.token}", [case.proof()])
        assert (answer.outcome, answer.reason) == ("ok", "alice"), answer


@pytest.mark.parametrize(
    ("grpc_peer", "address"),
    [
        ("ipv4:127.0.0.1:50051", "127.0.0.1"),
        ("ipv6:[::1]:50051", "::1"),
        ("ipv6:[fe80::1%eth0]:50051", "fe80::1%eth0"),
        ("unix:/run/app.sock", None),
        ("", None),
        (None, None),
    ],
)
def test_the_peer_address_of_a_grpc_call(grpc_peer: str | None, address: str | None) -> None:
    assert peer_address(grpc_peer) == address


@pytest.mark.parametrize(
    ("address", "networks", "trusted"),
    [
        ("127.0.0.1", ("127.0.0.0/8",), True),
        ("127.1.2.3", ("127.1.2.3/32",), True),
        ("127.1.2.4", ("127.1.2.3/32",), False),
        ("::1", ("::1/128",), True),
        ("::ffff:127.0.0.7", ("127.0.0.0/8",), True),  # an IPv4 peer on a dual-stack socket
        ("fe80::1%eth0", ("fe80::/10",), True),
        ("127.0.0.1", (), False),  # nobody is trusted by default
        (None, ("0.0.0.0/0",), False),  # an unknown peer (a Unix socket) never is
        ("not an address", ("0.0.0.0/0",), False),
    ],
)
def test_trusted_peers(address: str | None, networks: tuple[str, ...], trusted: bool) -> None:
    assert is_trusted_peer(address, networks) is trusted
