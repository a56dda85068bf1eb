"""DPoP at the token endpoint (RFC 9449 §5): the proof a client sends with its token request.

A token request with a valid ``DPoP`` header gets a token bound to the proof's key: ``cnf.jkt``
is the key's RFC 7638 thumbprint, and the answer says ``token_type: DPoP``. The checks are those
of §4.3 that apply to a token request: exactly one proof; a compact JWS; ``typ`` ``dpop+jwt``;
an asymmetric ``alg`` from the allowlist; a public ``jwk`` (no private member) whose signature
verifies; ``htm`` ``POST`` and ``htu`` the token endpoint's URL (query and fragment ignored,
scheme and host case-insensitive, default port dropped); ``iat`` within a minute; a ``jti`` not
seen before in that minute. There is no access token yet, so no ``ath``; the issuer asks for no
nonce. A failure is ``invalid_dpop_proof`` (§5, HTTP 400).

This is the issuer's side; resource servers check proofs with ``jwt_authn``.

Usage:
    jkt = check_token_request_proof(request.headers.getall("DPoP", []), token_endpoint=url,
                                     now=clock(), seen=state.seen_proofs)
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import OrderedDict
from typing import Any, Final
from urllib.parse import urlsplit

from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from dev_issuer.oauth_errors import OAuthError

__all__ = ["DPOP_ALGORITHMS", "SeenProofs", "check_token_request_proof"]

#: Proof algorithms accepted and advertised (``dpop_signing_alg_values_supported``): asymmetric only.
DPOP_ALGORITHMS: Final[tuple[str, ...]] = ("ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256")
#: Oldest proof accepted, and how far in the future one may be, seconds (RFC 9449 §11.1 asks for
#: a short window; the guard's defaults).
MAX_PROOF_AGE_S: Final = 60.0
PROOF_LEEWAY_S: Final = 5.0
#: Proofs are a few hundred bytes (an RSA-4096 one about 2.2 KiB).
MAX_PROOF_BYTES: Final = 4096
_KEY_TYPES: Final = {
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
    "PS256": "RSA",
    "RS256": "RSA",
}
_CURVES: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class SeenProofs:
    """``jti`` values of accepted proofs (per key) until they are too old to be accepted anyway;
    bounded: when full, the oldest is dropped (a dev issuer; the guard's store refuses instead)."""

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], float] = OrderedDict()

    def first_use(self, jkt: str, jti: str, *, expires_at: float, now: float) -> bool:
        while self._entries and next(iter(self._entries.values())) <= now:
            self._entries.popitem(last=False)
        if (jkt, jti) in self._entries:
            return False
        self._entries[(jkt, jti)] = expires_at
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return True


def _refuse(description: str) -> OAuthError:
    return OAuthError("invalid_dpop_proof", description)


def _decode_json(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _refuse(f"the proof's {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise _refuse(f"the proof's {what} is not a JSON object")
    return value


def _normalize(url: str) -> str | None:
    """Scheme and host lower-cased, the default port dropped, query and fragment removed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname.lower()
    authority = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{authority}{parts.path or '/'}"


def _public_key(header: dict[str, Any], alg: str) -> jwk.JWK:
    members = header.get("jwk")
    if not isinstance(members, dict):
        raise _refuse("the proof's header has no jwk")
    if _PRIVATE_MEMBERS & members.keys():
        raise _refuse("the proof's jwk holds a private key")
    curve = _CURVES.get(alg, "Ed25519" if alg == "EdDSA" else None)
    if members.get("kty") != _KEY_TYPES[alg] or members.get("crv") != curve:
        raise _refuse("the proof's jwk does not fit its alg")
    try:
        key = jwk.JWK(**members)
    except (JWException, ValueError, TypeError):
        raise _refuse("the proof's jwk is not a usable key") from None
    if key.has_private:
        raise _refuse("the proof's jwk holds a private key")
    modulus = members.get("n")
    if isinstance(modulus, str) and len(modulus) * 6 < 2048:  # base64url: 6 bits a character
        raise _refuse("the proof's RSA key is shorter than 2048 bits")
    return key


def check_token_request_proof(
    proofs: list[str], *, token_endpoint: str, now: float, seen: SeenProofs
) -> str | None:
    """The RFC 7638 thumbprint to bind the token to, or None when the request has no proof.
    Raises ``OAuthError("invalid_dpop_proof", ...)`` for a proof that fails a check."""
    if not proofs:
        return None
    if len(proofs) > 1:
        raise _refuse("more than one DPoP header")
    proof = proofs[0].strip()
    if len(proof) > MAX_PROOF_BYTES:
        raise _refuse("the proof is too large")
    segments = proof.split(".")
    if len(segments) != 3 or not all(segments):
        raise _refuse("the proof is not a compact JWS")
    header = _decode_json(segments[0], "header")
    if header.get("typ") != "dpop+jwt":
        raise _refuse("the proof's typ is not dpop+jwt")
    alg = header.get("alg")
    if alg not in DPOP_ALGORITHMS:
        raise _refuse(f"the proof's alg is not one of {' '.join(DPOP_ALGORITHMS)}")
    key = _public_key(header, alg)
    verifier = jws.JWS()
    verifier.allowed_algs = [alg]
    try:
        verifier.deserialize(proof, key=key, alg=alg)
    except (JWException, ValueError, TypeError):
        raise _refuse("the proof's signature does not verify with its jwk") from None
    claims = _decode_json(segments[1], "payload")
    if claims.get("htm") != "POST":
        raise _refuse("the proof's htm is not POST")
    htu = claims.get("htu")
    if not isinstance(htu, str) or _normalize(htu) != _normalize(token_endpoint):
        raise _refuse("the proof's htu is not the token endpoint")
    raw_iat = claims.get("iat")
    # bool is an int to Python, and NaN passes every comparison below: neither is a time.
    if isinstance(raw_iat, bool) or not isinstance(raw_iat, (int, float)) or not math.isfinite(raw_iat):
        raise _refuse("the proof's iat is not a number")
    iat = float(raw_iat)
    if iat > now + PROOF_LEEWAY_S or iat < now - MAX_PROOF_AGE_S:
        raise _refuse("the proof's iat is outside the accepted window")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise _refuse("the proof's jti is missing")
    jkt = str(key.thumbprint())
    if not seen.first_use(jkt, jti, expires_at=iat + MAX_PROOF_AGE_S, now=now):
        raise _refuse("the proof was used before")
    return jkt
