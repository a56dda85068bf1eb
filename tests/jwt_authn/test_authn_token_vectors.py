"""Named token vectors: every structural, algorithm, key and claim rule of the verifier.

Each vector is built against a real loopback issuer (RS256, PS256, ES256 and EdDSA keys served
as discovery + JWKS over HTTP) and run through ``Authenticator.authenticate``; the expected
outcome is the gRPC status the interceptors map the error to, and the error's ``reason``.
A second loopback issuer plays the attacker: vectors point ``jku``/``x5u`` at it, and no
vector may ever make us fetch from it.

The comment above each vector is the decoded header and payload. ``$ISS`` is the issuer's URL,
``$KID(alg)`` the kid of its current key for ``alg``, ``$NOW`` the injected clock (1750000000);
unless shown, the payload is the valid one: ``{"iss":$ISS,"sub":"alice","aud":"secureroute",
"iat":$NOW,"exp":$NOW+300,"scope":"read"}`` and the header ``{"alg":..,"typ":"at+jwt","kid":$KID(alg)}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import nested
from jwcrypto import jwe, jwk
from jwcrypto.common import base64url_encode
from jwcrypto.jwa import JWA

from jwt_authn import AuthnError
from jwt_authn.status_map import grpc_rejection
from jwt_authn.testing import LoopbackIssuer, encode_segment, generate_key, sign_compact

METHOD = "/test.v1.Echo/Unary"
DROP = object()  # a claim or header value that means "leave this member out"
JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"  # RFC 9449 §6.1's example thumbprint
X5T = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"  # RFC 8705 §3.1's example thumbprint


@dataclass
class Ctx:
    """What a vector may use to build its token."""

    issuer: LoopbackIssuer
    attacker: LoopbackIssuer
    now: float
    extra_keys: dict[str, jwk.JWK] = field(default_factory=dict)

    @property
    def iss(self) -> str:
        return self.issuer.url

    def key(self, alg: str) -> jwk.JWK:
        return self.issuer.tokens.keys[alg]

    def kid(self, alg: str) -> str:
        return self.issuer.kid(alg)

    def payload(self, **changes: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.iss,
            "sub": "alice",
            "aud": "secureroute",
            "iat": int(self.now),
            "exp": int(self.now) + 300,
            "scope": "read",
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not DROP}

    def header(self, alg: str = "ES256", **changes: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"alg": alg, "typ": "at+jwt", "kid": self.kid(alg) if alg in KEYED else DROP}
        header.update(changes)
        return {k: v for k, v in header.items() if v is not DROP}

    def sign(
        self,
        header: dict[str, Any],
        payload: dict[str, Any] | bytes | None = None,
        key: jwk.JWK | None = None,
    ) -> str:
        """A compact JWS; the key defaults to the issuer's current key for ``header['alg']``."""
        return sign_compact(
            header, self.payload() if payload is None else payload, key or self.key(header["alg"])
        )

    def token(self, alg: str = "ES256", **claims: Any) -> str:
        return self.sign(self.header(alg), self.payload(**claims))


KEYED = ("RS256", "PS256", "ES256", "EdDSA")


def _raw(ctx: Ctx, header: bytes, payload: bytes, alg: str = "ES256") -> str:
    """A JWS over exactly these header and payload bytes (for JSON the encoder would not write)."""
    signing_input = f"{encode_segment(header)}.{encode_segment(payload)}"
    signature = JWA.signing_alg(alg).sign(ctx.key(alg), signing_input.encode())
    return f"{signing_input}.{encode_segment(signature)}"


def _payload_json(ctx: Ctx, **raw_members: str) -> bytes:
    """The valid payload as JSON text, with members replaced by raw JSON text (NaN, 1e400, ...)."""
    members = {k: json.dumps(v) for k, v in ctx.payload().items()}
    members.update(raw_members)
    return ("{" + ",".join(f'"{k}":{v}' for k, v in members.items()) + "}").encode()


def _header_json(ctx: Ctx, text: str) -> bytes:
    return text.replace("$KID", ctx.kid("ES256")).encode()


def _with_signature_of(token: str, other: str) -> str:
    return token.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]


def _non_canonical(token: str) -> str:
    """Flip an unused low bit of the last base64url character (a 64-byte signature leaves four)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(token.rsplit(".", 1)[1]) % 4 == 2  # 86 characters for 64 bytes
    return token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]


def _unsigned(header: dict[str, Any], payload: dict[str, Any], signature_from: str | None) -> str:
    """header . payload . (the signature segment of ``signature_from``, or empty)."""
    signature = signature_from.rsplit(".", 1)[1] if signature_from else ""
    return f"{encode_segment(header)}.{encode_segment(payload)}.{signature}"


def _hmac_with_public_key(ctx: Ctx, alg: str) -> str:
    # The RFC 8725 §2.1 key-confusion attack: the issuer's *public* RSA key (PEM) as HMAC secret.
    public_pem = ctx.key("RS256").export_to_pem()
    secret = jwk.JWK(kty="oct", k=base64url_encode(public_pem))
    return ctx.sign(ctx.header(alg, kid=ctx.kid("RS256")), key=secret)


def _jwe(ctx: Ctx, *, zip_def: bool) -> str:
    recipient = ctx.extra_keys["enc"]
    protected = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": recipient.get("kid")}
    if zip_def:
        protected["zip"] = "DEF"  # a decompression bomb would hide here (CVE-2024-28102)
    token = jwe.JWE(json.dumps(ctx.payload()).encode(), protected=json.dumps(protected))
    token.add_recipient(recipient)
    return str(token.serialize(compact=True))


@dataclass(frozen=True)
class Vector:
    id: str
    build: Callable[[Ctx], str]
    status: str  # the gRPC status the interceptors answer with
    reason: str | None = None  # the AuthnError reason (None when accepted)


OK = "OK"
UNAUTH = "UNAUTHENTICATED"

VECTORS: list[Vector] = [
    # --- accepted: one per algorithm, and the accepted typ values --------------------------------
    # {"alg":"RS256","typ":"at+jwt","kid":$KID(RS256)} . valid payload
    Vector("valid_rs256", lambda c: c.token("RS256"), OK),
    # {"alg":"PS256","typ":"at+jwt","kid":$KID(PS256)} . valid payload
    Vector("valid_ps256", lambda c: c.token("PS256"), OK),
    # authorization: "Bearer  " + the valid ES256 token: two spaces (RFC 6750 §2.1: 1*SP)
    Vector("valid_after_two_spaces", lambda c: " " + c.token("ES256"), OK),
    # authorization: "Bearer \t" + the valid ES256 token: a tab is not SP
    Vector("tab_after_scheme", lambda c: "\t" + c.token("ES256"), UNAUTH, "malformed_authorization"),
    # {"alg":"ES256","typ":"at+jwt","kid":$KID(ES256)} . valid payload
    Vector("valid_es256", lambda c: c.token("ES256"), OK),
    # {"alg":"EdDSA","typ":"at+jwt","kid":$KID(EdDSA)} . valid payload
    Vector("valid_eddsa", lambda c: c.token("EdDSA"), OK),
    # {"alg":"ES256","typ":"JWT","kid":..} . valid payload
    Vector("typ_JWT_accepted", lambda c: c.sign(c.header(typ="JWT")), OK),
    # {"alg":"ES256","typ":"application/at+jwt","kid":..} . valid payload
    Vector("typ_application_at_jwt_accepted", lambda c: c.sign(c.header(typ="application/at+jwt")), OK),
    # {"alg":"ES256","kid":..} (no typ) . valid payload
    Vector("typ_absent_accepted", lambda c: c.sign(c.header(typ=DROP)), OK),
    # {"alg":"ES256","typ":"at+jwt"} (no kid) . valid payload: tried against the issuer's ES256 keys
    Vector("no_kid_tried_against_matching_keys", lambda c: c.sign(c.header(kid=DROP)), OK),
    # {"alg":"EdDSA","typ":"at+jwt"} (no kid) . valid payload
    Vector("no_kid_eddsa_tried_against_matching_keys", lambda c: c.sign(c.header("EdDSA", kid=DROP)), OK),
    # header . {..,"aud":["other-api","secureroute"]}
    Vector("aud_list_containing_ours_accepted", lambda c: c.token(aud=["other-api", "secureroute"]), OK),
    # header . {..,"exp":$NOW-30} (expired exactly by the 30 s leeway)
    Vector("exp_within_leeway_accepted", lambda c: c.token(exp=int(c.now) - 30), OK),
    # header . {..,"nbf":$NOW+30}
    Vector("nbf_within_leeway_accepted", lambda c: c.token(nbf=int(c.now) + 30), OK),
    # header . {..,"iat":$NOW+30}
    Vector("iat_within_leeway_accepted", lambda c: c.token(iat=int(c.now) + 30), OK),
    # header . {..,"exp":$NOW+300.5} (NumericDate may be fractional, RFC 7519 §2)
    Vector("fractional_exp_accepted", lambda c: c.token(exp=c.now + 300.5), OK),
    # --- structure: compact JWS only --------------------------------------------------------------
    # a real JWE: {"alg":"ECDH-ES","enc":"A256GCM","kid":"enc-key"} . . iv . ciphertext . tag
    Vector(
        "jwe_five_segments_not_decrypted",
        lambda c: _jwe(c, zip_def=False),
        UNAUTH,
        "encrypted_token_not_accepted",
    ),
    # a real JWE with {"zip":"DEF"}: refused before any inflation
    Vector(
        "jwe_zip_def_not_decompressed",
        lambda c: _jwe(c, zip_def=True),
        UNAUTH,
        "encrypted_token_not_accepted",
    ),
    # {"alg":"ES256","enc":"A256GCM",..} . valid payload: a JWE header in a 3-segment token
    Vector(
        "jws_with_enc_header_refused",
        lambda c: c.sign(c.header(enc="A256GCM")),
        UNAUTH,
        "encrypted_token_not_accepted",
    ),
    # header . payload (no signature segment)
    Vector("two_segments", lambda c: c.token().rsplit(".", 1)[0], UNAUTH, "malformed_token"),
    # header . payload . signature . signature
    Vector("four_segments", lambda c: c.token() + ".AAAA", UNAUTH, "malformed_token"),
    # header . payload . "" (empty signature)
    Vector("empty_signature", lambda c: c.token().rsplit(".", 1)[0] + ".", UNAUTH, "missing_signature"),
    # "not json" . valid payload
    Vector("header_not_json", lambda c: _raw(c, b"not json", _payload_json(c)), UNAUTH, "malformed_token"),
    # [..] . valid payload: a header that is a JSON array
    Vector("header_not_object", lambda c: _raw(c, b'["ES256"]', _payload_json(c)), UNAUTH, "malformed_token"),
    # {"alg":"ES256","alg":"none",..}: duplicate members (RFC 7515 §5.2)
    Vector(
        "header_duplicate_member",
        lambda c: _raw(c, _header_json(c, '{"alg":"ES256","kid":"$KID","alg":"none"}'), _payload_json(c)),
        UNAUTH,
        "malformed_token",
    ),
    # {"alg":"ES256",..}= . payload . signature: "=" inside is not even an RFC 6750 b64token
    Vector(
        "header_base64_padding", lambda c: c.token().replace(".", "=.", 1), UNAUTH, "malformed_authorization"
    ),
    # header . payload . signature== : padded base64 is not base64url (RFC 7515 §2)
    Vector("signature_base64_padding", lambda c: c.token() + "==", UNAUTH, "malformed_token"),
    # {"alg":"ES256",..} with base64 "+/" instead of base64url
    Vector(
        "signature_plain_base64",
        lambda c: c.token()[:-2] + "+/",
        UNAUTH,
        "malformed_token",
    ),
    # header . payload . signature with its unused low bits set: the same bytes, another spelling
    Vector("signature_non_canonical_base64", lambda c: _non_canonical(c.token()), UNAUTH, "malformed_token"),
    # header . [1,2,3]: a payload that is not an object
    Vector("payload_not_object", lambda c: c.sign(c.header(), b"[1,2,3]"), UNAUTH, "malformed_token"),
    # header . {"iss":..,"iss":"https://evil.example"}: duplicate claim
    Vector(
        "payload_duplicate_claim",
        lambda c: _raw(
            c, json.dumps(c.header()).encode(), _payload_json(c)[:-1] + b',"iss":"https://evil.example"}'
        ),
        UNAUTH,
        "malformed_token",
    ),
    # {"typ":"at+jwt","kid":..} (no alg)
    Vector(
        "alg_missing",
        lambda c: _raw(c, _header_json(c, '{"typ":"at+jwt","kid":"$KID"}'), _payload_json(c)),
        UNAUTH,
        "malformed_token",
    ),
    # {"alg":"ES256","kid":42}
    Vector("kid_not_a_string", lambda c: c.sign(c.header(kid=42)), UNAUTH, "malformed_token"),
    # --- algorithm allowlist ---------------------------------------------------------------------
    # {"alg":"none","typ":"at+jwt","kid":..} . valid payload . "" (the classic unsigned token)
    Vector(
        "alg_none_unsigned",
        lambda c: _unsigned(c.header("none"), c.payload(), None),
        UNAUTH,
        "missing_signature",
    ),
    # {"alg":"none",..} . valid payload . <an ES256 signature>: a signature present, alg "none"
    *[
        Vector(
            f"alg_{name}_refused",
            lambda c, name=name: _unsigned(c.header(name, kid=c.kid("ES256")), c.payload(), c.token()),
            UNAUTH,
            "algorithm_not_allowed",
        )
        for name in ("none", "None", "NONE", "nOnE")
    ],
    # {"alg":"HS256","kid":$KID(RS256)} . valid payload, HMAC keyed with the issuer's public RSA PEM
    *[
        Vector(
            f"{alg.lower()}_with_public_key_as_secret",
            lambda c, alg=alg: _hmac_with_public_key(c, alg),
            UNAUTH,
            "algorithm_not_allowed",
        )
        for alg in ("HS256", "HS384", "HS512")
    ],
    # {"alg":"RS1",..}: not a JOSE algorithm at all
    Vector(
        "alg_unknown",
        lambda c: _unsigned(c.header("RS1", kid=c.kid("RS256")), c.payload(), c.token("RS256")),
        UNAUTH,
        "algorithm_not_allowed",
    ),
    # --- key selection: the key must fit the alg ---------------------------------------------------
    # {"alg":"ES256","kid":$KID(RS256)} . valid payload, signed by the ES256 key
    Vector(
        "es256_header_with_rsa_kid",
        lambda c: c.sign(c.header("ES256", kid=c.kid("RS256"))),
        UNAUTH,
        "key_algorithm_mismatch",
    ),
    # {"alg":"ES384","kid":$KID(ES256)} . valid payload, signed by a P-384 key: the P-256 kid cannot fit
    Vector(
        "es384_token_with_p256_kid",
        lambda c: c.sign(c.header("ES384", kid=c.kid("ES256")), key=c.extra_keys["p384"]),
        UNAUTH,
        "key_algorithm_mismatch",
    ),
    # {"alg":"ES384"} (no kid) . valid payload: the issuer has no P-384 key
    Vector(
        "es384_token_without_kid_no_p384_key",
        lambda c: c.sign(c.header("ES384", kid=DROP), key=c.extra_keys["p384"]),
        UNAUTH,
        "no_matching_key",
    ),
    # {"alg":"ES384","kid":"p256-noalg"}, signed by a P-384 key: the published P-256 key has no "alg",
    # so only its curve rules it out
    Vector(
        "es384_token_with_p256_kid_key_without_alg",
        lambda c: c.sign(c.header("ES384", kid="p256-noalg"), key=c.extra_keys["p384"]),
        UNAUTH,
        "key_algorithm_mismatch",
    ),
    # {"alg":"ES256","kid":"rsa-noalg"}, signed by the ES256 key: only the key type rules the RSA key out
    Vector(
        "es256_header_with_rsa_kid_key_without_alg",
        lambda c: c.sign(c.header("ES256", kid="rsa-noalg")),
        UNAUTH,
        "key_algorithm_mismatch",
    ),
    # {"alg":"RS256","kid":"p256-noalg"}, signed by the RSA key: only the key type rules the EC key out
    Vector(
        "rs256_header_with_ec_kid_key_without_alg",
        lambda c: c.sign(c.header("RS256", kid="p256-noalg")),
        UNAUTH,
        "key_algorithm_mismatch",
    ),
    # {"alg":"ES256","kid":"p256-noalg"}: a key without "alg" verifies any algorithm that fits it
    Vector(
        "key_without_alg_accepted_for_a_fitting_alg",
        lambda c: c.sign(c.header("ES256", kid="p256-noalg"), key=c.extra_keys["p256-noalg"]),
        OK,
    ),
    # {"alg":"PS256","kid":"rsa-noalg"}: an RSA key without "alg" serves PS256 as well as RS256
    Vector(
        "rsa_key_without_alg_accepted_for_ps256",
        lambda c: c.sign(c.header("PS256", kid="rsa-noalg"), key=c.extra_keys["rsa-noalg"]),
        OK,
    ),
    # {"alg":"PS256","kid":$KID(RS256)}, signed with that RSA key using PS256: the key's "alg" is RS256
    Vector(
        "key_alg_differs_from_header_alg",
        lambda c: c.sign(c.header("PS256", kid=c.kid("RS256")), key=c.key("RS256")),
        UNAUTH,
        "key_algorithm_mismatch",
    ),
    # {"alg":"ES256","kid":"enc-use"}, signed by a published key whose "use" is "enc"
    Vector(
        "key_with_use_enc_skipped",
        lambda c: c.sign(c.header(kid="enc-use"), key=c.extra_keys["enc-use"]),
        UNAUTH,
        "unknown_kid",
    ),
    # {"alg":"ES256","kid":"attacker-1"}, signed by a key the issuer never published
    Vector(
        "unknown_kid",
        lambda c: c.sign(c.header(kid="attacker-1"), key=c.attacker.tokens.keys["ES256"]),
        UNAUTH,
        "unknown_kid",
    ),
    # --- embedded or remote keys in the header are never used ---------------------------------------
    # {"alg":"ES256","kid":$KID(ES256),"jku":"$ATTACKER/jwks"}, signed by the attacker's key
    Vector(
        "jku_attacker_key_ignored",
        lambda c: c.sign(c.header(jku=c.attacker.jwks_uri), key=c.attacker.tokens.keys["ES256"]),
        UNAUTH,
        "invalid_signature",
    ),
    # {"alg":"ES256","kid":$KID(ES256),"x5u":"$ATTACKER/jwks"}, signed by the attacker's key
    Vector(
        "x5u_attacker_url_ignored",
        lambda c: c.sign(c.header(x5u=c.attacker.jwks_uri), key=c.attacker.tokens.keys["ES256"]),
        UNAUTH,
        "invalid_signature",
    ),
    # {"alg":"ES256","kid":$KID(ES256),"jwk":<attacker public key>}, signed by the attacker's key
    Vector(
        "embedded_jwk_ignored",
        lambda c: c.sign(
            c.header(jwk=c.attacker.tokens.keys["ES256"].export_public(as_dict=True)),
            key=c.attacker.tokens.keys["ES256"],
        ),
        UNAUTH,
        "invalid_signature",
    ),
    # {"alg":"ES256","kid":$KID(ES256),"x5c":["MIIB..."]}, signed by the attacker's key
    Vector(
        "x5c_chain_ignored",
        lambda c: c.sign(
            c.header(x5c=["MIIBkTCB+wIJAKHBfpegPjMCMA0GCSqG"]), key=c.attacker.tokens.keys["ES256"]
        ),
        UNAUTH,
        "invalid_signature",
    ),
    # {"alg":"ES256","kid":$KID(ES256)} . valid payload . signature of another payload
    Vector(
        "signature_of_another_payload",
        lambda c: _with_signature_of(c.token(sub="mallory"), c.token(sub="alice", exp=int(c.now) + 299)),
        UNAUTH,
        "invalid_signature",
    ),
    # {"alg":"RS256",..} . valid payload . a 64-byte signature (an RSA-2048 one is 256 bytes)
    Vector(
        "signature_of_wrong_length",
        lambda c: _with_signature_of(c.token("RS256"), c.token("ES256")),
        UNAUTH,
        "invalid_signature",
    ),
    # {"alg":"ES256","kid":..,"crit":["exp"],"exp":1}: an extension we do not implement
    Vector(
        "crit_header_refused",
        lambda c: c.sign(c.header(crit=["exp"], exp=1)),
        UNAUTH,
        "unsupported_critical_header",
    ),
    # {"alg":"ES256","kid":..,"b64":false,"crit":["b64"]} (RFC 7797 unencoded payload)
    Vector(
        "crit_b64_false_refused",
        lambda c: c.sign(c.header(b64=False, crit=["b64"])),
        UNAUTH,
        "unsupported_critical_header",
    ),
    # --- typ ---------------------------------------------------------------------------------------
    # {"alg":"ES256","typ":"JOSE",..}
    Vector("typ_jose_refused", lambda c: c.sign(c.header(typ="JOSE")), UNAUTH, "wrong_token_type"),
    # {"alg":"ES256","typ":"id_token+jwt",..}
    Vector(
        "typ_other_jwt_kind_refused",
        lambda c: c.sign(c.header(typ="secevent+jwt")),
        UNAUTH,
        "wrong_token_type",
    ),
    # {"alg":"ES256","typ":1,..}
    Vector("typ_not_a_string_refused", lambda c: c.sign(c.header(typ=1)), UNAUTH, "wrong_token_type"),
    # --- time claims (leeway 30 s) -----------------------------------------------------------------
    # header . {..} without "exp"
    Vector("exp_missing", lambda c: c.token(exp=DROP), UNAUTH, "missing_claim"),
    # header . {..,"exp":$NOW-31}
    Vector("exp_past_beyond_leeway", lambda c: c.token(exp=int(c.now) - 31), UNAUTH, "token_expired"),
    # header . {..,"nbf":$NOW+31}
    Vector("nbf_future_beyond_leeway", lambda c: c.token(nbf=int(c.now) + 31), UNAUTH, "token_not_yet_valid"),
    # header . {..,"iat":$NOW+31}
    Vector("iat_future_beyond_leeway", lambda c: c.token(iat=int(c.now) + 31), UNAUTH, "token_not_yet_valid"),
    # header . {..,"exp":"1750000300"}
    Vector("exp_string", lambda c: c.token(exp=str(int(c.now) + 300)), UNAUTH, "malformed_claims"),
    # header . {..,"exp":true}
    Vector("exp_bool", lambda c: c.token(exp=True), UNAUTH, "malformed_claims"),
    # header . {..,"exp":null}
    Vector("exp_null", lambda c: c.token(exp=None), UNAUTH, "malformed_claims"),
    # header . {..,"nbf":"0"}
    Vector("nbf_string", lambda c: c.token(nbf="0"), UNAUTH, "malformed_claims"),
    # header . {..,"iat":false}
    Vector("iat_bool", lambda c: c.token(iat=False), UNAUTH, "malformed_claims"),
    # header . {..,"exp":NaN} (raw JSON; Python's json would accept it)
    Vector(
        "exp_nan_raw_json",
        lambda c: _raw(c, json.dumps(c.header()).encode(), _payload_json(c, exp="NaN")),
        UNAUTH,
        "malformed_token",
    ),
    # header . {..,"exp":Infinity}
    Vector(
        "exp_infinity_raw_json",
        lambda c: _raw(c, json.dumps(c.header()).encode(), _payload_json(c, exp="Infinity")),
        UNAUTH,
        "malformed_token",
    ),
    # header . {..,"exp":1e400} (overflows to inf)
    Vector(
        "exp_overflowing_float",
        lambda c: _raw(c, json.dumps(c.header()).encode(), _payload_json(c, exp="1e400")),
        UNAUTH,
        "malformed_token",
    ),
    # --- iss: exact string match ------------------------------------------------------------------
    # header . {..,"iss":"$ISS/"}
    Vector("iss_trailing_slash", lambda c: c.token(iss=c.iss + "/"), UNAUTH, "issuer_mismatch"),
    # header . {..,"iss":"$ISS" minus its last character}
    Vector("iss_prefix", lambda c: c.token(iss=c.iss[:-1]), UNAUTH, "issuer_mismatch"),
    # header . {..,"iss":"$ISS/tenant"}
    Vector("iss_suffix", lambda c: c.token(iss=c.iss + "/tenant"), UNAUTH, "issuer_mismatch"),
    # header . {..,"iss":"HTTP://127.0.0.1:..."}
    Vector(
        "iss_case_variant",
        lambda c: c.token(iss=c.iss.replace("http://", "HTTP://")),
        UNAUTH,
        "issuer_mismatch",
    ),
    # header . {..,"iss":" $ISS"}
    Vector("iss_leading_space", lambda c: c.token(iss=" " + c.iss), UNAUTH, "issuer_mismatch"),
    # header . {..} without "iss"
    Vector("iss_missing", lambda c: c.token(iss=DROP), UNAUTH, "issuer_mismatch"),
    # header . {..,"iss":["$ISS"]}
    Vector("iss_not_a_string", lambda c: c.token(iss=[c.iss]), UNAUTH, "issuer_mismatch"),
    # --- aud --------------------------------------------------------------------------------------
    # header . {..,"aud":"other-api"}
    Vector("aud_wrong", lambda c: c.token(aud="other-api"), UNAUTH, "audience_mismatch"),
    # header . {..,"aud":"SecureRoute"}
    Vector("aud_case_variant", lambda c: c.token(aud="SecureRoute"), UNAUTH, "audience_mismatch"),
    # header . {..,"aud":["a","b"]}
    Vector("aud_list_without_ours", lambda c: c.token(aud=["a", "b"]), UNAUTH, "audience_mismatch"),
    # header . {..} without "aud"
    Vector("aud_missing", lambda c: c.token(aud=DROP), UNAUTH, "audience_mismatch"),
    # header . {..,"aud":42}
    Vector("aud_number", lambda c: c.token(aud=42), UNAUTH, "malformed_claims"),
    # header . {..,"aud":["secureroute",42]}
    Vector(
        "aud_list_with_non_string", lambda c: c.token(aud=["secureroute", 42]), UNAUTH, "malformed_claims"
    ),
    # header . {..,"aud":[]}
    Vector("aud_empty_list", lambda c: c.token(aud=[]), UNAUTH, "malformed_claims"),
    # header . {..,"aud":{"secureroute":true}}
    Vector("aud_object", lambda c: c.token(aud={"secureroute": True}), UNAUTH, "malformed_claims"),
    # --- cnf: sender-constrained tokens are never bearer tokens (RFC 9449 §7.2, RFC 8705 §3) -------
    # header . {..,"cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}: DPoP-bound
    Vector("cnf_jkt_as_bearer", lambda c: c.token(cnf={"jkt": JKT}), UNAUTH, "bound_token_as_bearer"),
    # header . {..,"cnf":{"x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}: certificate-bound,
    # sent without a client certificate (RFC 8705 tokens keep the Bearer scheme)
    Vector("cnf_x5t_as_bearer", lambda c: c.token(cnf={"x5t#S256": X5T}), UNAUTH, "certificate_missing"),
    # header . {..,"cnf":{"kid":"k1"}}: any other confirmation method is a binding we cannot check
    Vector("cnf_other_as_bearer", lambda c: c.token(cnf={"kid": "k1"}), UNAUTH, "unsupported_confirmation"),
    # header . {..,"cnf":"junk"}
    Vector("cnf_not_an_object", lambda c: c.token(cnf="junk"), UNAUTH, "unsupported_confirmation"),
    # --- sub --------------------------------------------------------------------------------------
    # header . {..,"sub":42}
    Vector("sub_not_a_string", lambda c: c.token(sub=42), UNAUTH, "malformed_claims"),
    # header . {..,"sub":""}
    Vector("sub_empty", lambda c: c.token(sub=""), UNAUTH, "malformed_claims"),
    # --- nesting (max_claims_depth 16; the payload object is level 1) ------------------------------
    # header . {..,"x":{"x":{...15 objects deep...}}}: 16 levels in all
    Vector("claims_nested_to_the_limit", lambda c: c.token(x=nested(15, bottom=1)), OK),
    # header . {..,"x":[[...15 arrays deep...]]}: 16 levels in all
    Vector("claims_nested_arrays_to_the_limit", lambda c: c.token(x=nested(15, array=True, bottom=1)), OK),
    # header . {..,"x":{"x":{...16 objects deep...}}}: 17 levels
    Vector(
        "claims_nested_past_the_limit", lambda c: c.token(x=nested(16, bottom=1)), UNAUTH, "malformed_claims"
    ),
    # header . {..,"x":{"x":{...40 objects deep...}}}: past protobuf's Struct decode depth
    Vector("claims_nested_40_deep", lambda c: c.token(x=nested(40, bottom=1)), UNAUTH, "malformed_claims"),
]


@pytest.fixture
async def ctx(make_issuer: Any, publish_key: Any, clock: Any) -> Ctx:
    issuer = await make_issuer(algorithms=KEYED)
    attacker = await make_issuer(algorithms=("ES256",))
    signing_enc_use = generate_key("ES256", kid="enc-use")
    # The same key material published with "use":"enc": jwcrypto would refuse to sign with it.
    published_enc_use = jwk.JWK(**{**signing_enc_use.export(as_dict=True), "use": "enc", "alg": "ES256"})
    publish_key(issuer, published_enc_use)
    # Keys published without "alg": only their type and curve limit what they verify.
    p256_without_alg = jwk.JWK.generate(kty="EC", crv="P-256", kid="p256-noalg", use="sig")
    rsa_members = {k: v for k, v in issuer.tokens.keys["RS256"].export(as_dict=True).items() if k != "alg"}
    rsa_without_alg = jwk.JWK(**{**rsa_members, "kid": "rsa-noalg"})
    publish_key(issuer, p256_without_alg)
    publish_key(issuer, rsa_without_alg)
    extra = {
        "p256-noalg": p256_without_alg,
        "rsa-noalg": rsa_without_alg,
        "enc-use": signing_enc_use,
        "p384": generate_key("ES384"),
        "enc": jwk.JWK.generate(kty="EC", crv="P-256", kid="enc-key", use="enc"),
    }
    return Ctx(issuer=issuer, attacker=attacker, now=clock.now, extra_keys=extra)


def test_vector_ids_are_unique() -> None:
    ids = [v.id for v in VECTORS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.id)
async def test_token_vector(vector: Vector, ctx: Ctx, make_authenticator: Any, issuer_config: Any) -> None:
    authenticator = await make_authenticator(issuer_config(ctx.issuer))
    token = vector.build(ctx)
    try:
        principal = await authenticator.authenticate([f"Bearer {token}"], METHOD)
    except AuthnError as error:
        code, _details, _trailers = grpc_rejection(error)
        assert (code.name, error.reason) == (vector.status, vector.reason), error.detail
    else:
        assert (vector.status, vector.reason) == (OK, None), "accepted a token that must be refused"
        assert principal is not None
        assert principal.subject == "alice"
        assert principal.issuer == ctx.issuer.url
    # Nothing in a token ever makes us fetch from a URL it names.
    assert (ctx.attacker.discovery_fetches, ctx.attacker.jwks_fetches) == (0, 0)
