"""Check one DPoP proof (RFC 9449 §4.3) against the request it came with and the token it presents.

Every check of §4.3, each failing with its own stable reason (for metrics; never a value):

1. exactly one proof (``dpop_proof_missing``, ``dpop_proof_multiple``), at most
   ``DPoPConfig.max_proof_bytes`` (``dpop_proof_too_large``);
2. a compact JWS: three base64url segments, JSON header and payload (``dpop_proof_malformed``);
3. ``typ`` is ``dpop+jwt`` (``dpop_proof_wrong_type``);
4. ``alg`` is asymmetric and in ``DPoPConfig.algorithms`` (``dpop_algorithm_not_allowed``);
5. ``jwk`` is a public key fit for ``alg`` (a private member is refused: ``dpop_key_invalid``)
   and the signature verifies with it (``dpop_signature_invalid``);
6. ``htm`` is the request's method (``dpop_htm_mismatch``);
7. ``htu`` is the request's URI without query and fragment, compared after RFC 3986 §6.2.2
   normalisation: scheme and host case-insensitive, default port dropped, percent-encoding
   case, unreserved characters decoded, dot segments removed (``dpop_htu_mismatch``);
8. ``iat`` within ``[now - max_proof_age_s, now + proof_leeway_s]`` (``dpop_proof_expired``,
   ``dpop_proof_not_yet_valid``);
9. ``jti`` present (``dpop_proof_malformed``); unseen is the replay store's check, made last;
10. ``ath`` is base64url(SHA-256(access token)) (``dpop_ath_mismatch``);
11. the token's ``cnf.jkt`` is the RFC 7638 thumbprint of ``jwk`` (``dpop_key_mismatch``);
12. the nonce, when required (``use_dpop_nonce``; see ``nonce.py``).

Signatures are checked by ``verifier.signature_verifies`` and keys imported by ``keys``: jwcrypto
stays where it was. A proof's header and key, imported once, are remembered by the header's exact
text (a client signs every proof with the same key, so its header text repeats).

Usage:
    proof = check_proof(proof_text, token=token, expected_jkt=jkt, target=target, config=dpop, now=now)
    await replay_store.remember(proof.replay_key, proof.jkt, proof.expires_at, now)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from jwt_authn.config import DPoPConfig
from jwt_authn.errors import Unauthenticated
from jwt_authn.keys import KeyRejected, VerificationKey, import_public_key, key_fits_algorithm
from jwt_authn.nonce import NonceSource
from jwt_authn.sender import ProofTarget
from jwt_authn.verifier import decode_object, decode_segment, signature_verifies

__all__ = ["VerifiedProof", "access_token_hash", "check_proof", "normalize_uri", "same_text"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: Imported proof headers by their exact base64url text; bounded, emptied when full.
_HEADER_CACHE_SIZE = 1024
_PROOF_HEADERS: dict[str, tuple[str, VerificationKey, str]] = {}
_MAX_JTI_CHARS = 256


class VerifiedProof(NamedTuple):
    #: RFC 7638 thumbprint of the proof's key.
    jkt: str
    #: What the replay store remembers: a digest of the key's thumbprint and the ``jti``.
    replay_key: bytes
    #: When this proof stops being acceptable (``iat + max_proof_age_s``, leeway included).
    expires_at: float


def same_text(a: str, b: str) -> bool:
    """Constant-time equality of two strings of any characters. (``hmac.compare_digest`` raises
    TypeError for non-ASCII ``str``, and every string compared here comes from a caller.)"""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def access_token_hash(token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url (no padding) of SHA-256 over the token's ASCII."""
    return (
        base64.urlsafe_b64encode(hashlib.sha256(token.encode("ascii")).digest()).rstrip(b"=").decode("ascii")
    )


def _decode_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/" + "/".join(output)
    if path.endswith(("/.", "/..")):
        result = result.rstrip("/") + "/"
    return result


def normalize_uri(uri: str) -> str | None:
    """``uri`` without query and fragment, normalised per RFC 3986 §6.2.2 and §6.2.3 (scheme-based:
    default port dropped, empty path is ``/``). None when it is not an absolute http(s) URI or
    carries user information."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{authority}{_normalize_path(parts.path)}"


def _normalize_path(path: str) -> str:
    return _remove_dot_segments(_PERCENT.sub(_decode_unreserved, path or "/"))


def _header(segment: str, config: DPoPConfig) -> tuple[str, VerificationKey, str]:
    """(alg, the imported key, its thumbprint) of a proof header that passes checks 3-5."""
    cached = _PROOF_HEADERS.get(segment)
    if cached is not None:
        if cached[0] not in config.algorithms:
            raise Unauthenticated("dpop_algorithm_not_allowed", "proof alg is not in the allowlist")
        return cached
    header = decode_object(segment, "proof header", "dpop_proof_malformed")
    typ = header.get("typ")
    # RFC 7515 §4.1.9: media types compare case-insensitively.
    if not isinstance(typ, str) or typ.lower() != "dpop+jwt":
        raise Unauthenticated("dpop_proof_wrong_type", "proof typ is not dpop+jwt")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in config.algorithms:
        raise Unauthenticated("dpop_algorithm_not_allowed", "proof alg is not in the allowlist")
    if "crit" in header:
        raise Unauthenticated("dpop_proof_malformed", "crit names extensions we do not implement")
    jwk = header.get("jwk")
    if not isinstance(jwk, Mapping):
        raise Unauthenticated("dpop_key_invalid", "proof header has no jwk object")
    try:
        key = import_public_key(jwk)
    except KeyRejected as err:
        raise Unauthenticated("dpop_key_invalid", f"proof jwk: {err}") from None
    if not key_fits_algorithm(key, alg):
        raise Unauthenticated("dpop_key_invalid", "proof jwk does not fit its alg")
    parsed = (alg, key, key.key_id.rpartition("#jkt:")[2])
    if len(_PROOF_HEADERS) >= _HEADER_CACHE_SIZE:
        _PROOF_HEADERS.clear()
    _PROOF_HEADERS[segment] = parsed
    return parsed


#: Normalised URIs by their text: a client's proofs name the same few URIs, and a server's
#: targets repeat. Bounded; emptied when full.
_NORMALIZED_CACHE_SIZE = 4096
_NORMALIZED: dict[str, str | None] = {}


def _normalized(uri: str) -> str | None:
    normalized = _NORMALIZED.get(uri, "")
    if normalized == "":
        normalized = normalize_uri(uri)
        if len(_NORMALIZED) >= _NORMALIZED_CACHE_SIZE:
            _NORMALIZED.clear()
        _NORMALIZED[uri] = normalized
    return normalized


def _htu_matches(htu: Any, target: ProofTarget) -> bool:
    if not isinstance(htu, str) or len(htu) > 4096:
        return False
    normalized = _normalized(htu)
    if normalized is None:
        return False
    if target.scheme_and_path is not None:
        scheme, path = target.scheme_and_path
        proof_scheme, _, rest = normalized.partition("://")
        return proof_scheme == scheme and "/" + rest.partition("/")[2] == _normalize_path(path)
    return any(normalized == _normalized(uri) for uri in target.uris)


def check_proof(
    proof: str,
    *,
    token: str,
    expected_jkt: str,
    target: ProofTarget,
    config: DPoPConfig,
    now: float,
    nonces: NonceSource | None,
) -> VerifiedProof:
    """Checks 2-12 of the module docstring on one proof; the caller made check 1 and makes the
    replay check with the result."""
    if len(proof) > config.max_proof_bytes:
        raise Unauthenticated("dpop_proof_too_large", f"proof of {len(proof)} bytes")
    if proof.count(".") != 2:
        raise Unauthenticated("dpop_proof_malformed", "a proof is a compact JWS of three segments")
    header_segment, payload_segment, signature_segment = proof.split(".")
    alg, key, jkt = _header(header_segment, config)
    signature = decode_segment(signature_segment, "proof signature", "dpop_proof_malformed")
    signing_input = proof[: len(header_segment) + 1 + len(payload_segment)].encode("ascii", "replace")
    # Signature before claims: nothing the payload says is read before its key vouches for it.
    if not signature_verifies(alg, key, signing_input, signature):
        raise Unauthenticated("dpop_signature_invalid", "the proof's signature does not verify with its jwk")
    claims = decode_object(payload_segment, "proof payload", "dpop_proof_malformed")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI_CHARS:
        raise Unauthenticated("dpop_proof_malformed", "proof jti is missing or not a short string")
    if claims.get("htm") != target.htm:
        raise Unauthenticated("dpop_htm_mismatch", "proof htm is not the request's method")
    if not _htu_matches(claims.get("htu"), target):
        raise Unauthenticated("dpop_htu_mismatch", "proof htu is not the request's URI")
    raw_iat: Any = claims.get("iat")
    if type(raw_iat) not in (int, float) or not math.isfinite(raw_iat):
        raise Unauthenticated("dpop_proof_malformed", "proof iat is not a number")
    iat = float(raw_iat)
    if iat > now + config.proof_leeway_s:
        raise Unauthenticated("dpop_proof_not_yet_valid", "proof iat is in the future")
    if iat < now - config.max_proof_age_s:
        raise Unauthenticated("dpop_proof_expired", "proof iat is too old")
    ath = claims.get("ath")
    if not isinstance(ath, str) or not same_text(ath, access_token_hash(token)):
        raise Unauthenticated("dpop_ath_mismatch", "proof ath is not the hash of the presented token")
    if not same_text(jkt, expected_jkt):
        raise Unauthenticated("dpop_key_mismatch", "the proof's key is not the key the token is bound to")
    if nonces is not None:
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not nonces.is_valid(nonce, now):
            error = Unauthenticated("use_dpop_nonce", "the proof lacks the current server nonce")
            error.dpop_nonce = nonces.current(now)
            raise error
    replay_key = hashlib.blake2b(f"{jkt}\x00{jti}".encode(), digest_size=32).digest()
    # Acceptable until its iat is too old: that long the jti must be remembered.
    return VerifiedProof(jkt, replay_key, iat + config.max_proof_age_s)
