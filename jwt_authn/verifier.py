"""Verify one compact JWS access token: structure, header, signature (jwcrypto), claims.

This is the one module that verifies signatures with jwcrypto. It uses jwcrypto's algorithm
core (``JWA.signing_alg(alg).verify``) on keys imported once per key set, instead of
``JWT(jwt=..., key=JWKSet)``, which re-parses and deep-copies the key set on every call (costing
several times the signature check itself, timed in a running server). The guards that the
high-level API would apply are applied here, explicitly and stricter:

- compact JWS only: exactly three segments. Five segments (JWE) are refused before anything
  is decoded, so no decryption or decompression is ever attempted (the reason for jwcrypto's
  ``expected_type="JWS"`` guard, GHSA-j857-7rvv-vj97 and CVE-2024-28102);
- an explicit algorithm allowlist, asymmetric only; the key's type, curve, ``use`` and ``alg``
  must fit the header's ``alg`` (RFC 8725 §3.1, §2.1);
- ``crit`` is refused (we implement no extension, RFC 7515 §4.1.11); ``jku``/``x5u``/``jwk``/
  ``x5c`` are never used: keys come from the issuer's key set only;
- ``exp``, ``nbf``, ``iat`` checked with leeway and by type, ``iss`` exact, ``aud`` required.

Usage:
    unverified = parse_token(token, max_claims_depth=16)
    check_header(unverified, issuer_config)
    kid = verify_signature(unverified, keys)
    window = check_claims(unverified.claims, issuer_config, now=time.time())
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from jwcrypto.jwa import JWA

from jwt_authn.config import IssuerConfig
from jwt_authn.errors import Unauthenticated
from jwt_authn.keys import VerificationKey
from jwt_authn.strict_json import StrictJSONError, loads_object

__all__ = [
    "Binding",
    "UnverifiedToken",
    "ValidityWindow",
    "check_claims",
    "check_header",
    "decode_object",
    "decode_segment",
    "parse_token",
    "signature_verifies",
    "token_binding",
    "verify_signature",
]

#: ``typ`` values accepted unless at+jwt is required (RFC 9068 §2.1, RFC 7519 §5.1).
_ACCEPTED_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt", "application/jwt"})
_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64URL_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
#: Bits of the last character that encode no data, by segment length mod 4 (RFC 4648 §3.5):
#: they must be zero in the one canonical encoding.
_UNUSED_LAST_BITS = {2: 0x0F, 3: 0x03}
_SEXTET = {char: value for value, char in enumerate(_B64URL_ALPHABET)}
#: Headers that passed every check, by their exact base64url text. An issuer's tokens share
#: a handful of headers (one per key), so each is decoded once instead of once per token.
#: Bounded; emptied when full, so a flood of distinct headers costs what it costs without it.
_HEADER_CACHE_SIZE = 256
_VALID_HEADERS: dict[str, tuple[Mapping[str, Any], str, str | None]] = {}
_ENGINES: dict[str, Any] = {}


def _engine(alg: str) -> Any:
    """jwcrypto's signature engine for ``alg``, built once (it holds no per-call state)."""
    engine = _ENGINES.get(alg)
    if engine is None:
        engine = _ENGINES[alg] = JWA.signing_alg(alg)
    return engine


class UnverifiedToken(NamedTuple):
    """A structurally valid token whose signature has not been checked yet. (A NamedTuple: one is
    built per cold check, cheaper than a frozen dataclass.)"""

    header: Mapping[str, Any]
    #: Freshly decoded for this token and shared with nobody, so a verified principal may wrap
    #: it read-only instead of copying it.
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    alg: str
    kid: str | None


def _b64decode(segment: str, what: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): one encoding per value, nothing else."""
    raw = segment.encode("ascii", "strict") if segment.isascii() else b"!"
    # translate(None, alphabet) deletes every base64url character: anything left is foreign.
    if not raw or raw.translate(None, _B64URL_ALPHABET) or len(raw) % 4 == 1:
        raise Unauthenticated("malformed_token", f"{what} is not base64url")
    # Refuse non-canonical encodings (stray bits in the last character): one token, one spelling.
    unused_bits = _UNUSED_LAST_BITS.get(len(raw) % 4, 0)
    if _SEXTET[raw[-1]] & unused_bits:
        raise Unauthenticated("malformed_token", f"{what} is not canonical base64url")
    try:
        return binascii.a2b_base64(
            raw.translate(_B64URL_TO_STANDARD) + b"=" * (-len(raw) % 4), strict_mode=True
        )
    except (binascii.Error, ValueError):
        raise Unauthenticated("malformed_token", f"{what} is not base64url") from None


def _json_object(segment: str, what: str) -> dict[str, Any]:
    try:
        return loads_object(_b64decode(segment, what), what=what)
    except StrictJSONError as err:
        raise Unauthenticated("malformed_token", str(err)) from None


def _deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` nests objects and arrays more than ``limit`` levels deep (iteratively:
    the depth is the attacker's to choose)."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def parse_token(token: str, *, max_claims_depth: int) -> UnverifiedToken:
    """Split and decode a compact JWS, checking its shape and header. Verifies nothing.

    ``max_claims_depth`` is ``AuthnConfig.max_claims_depth``."""
    dots = token.count(".")
    if dots == 4:
        raise Unauthenticated("encrypted_token_not_accepted", "five segments: a JWE")
    if dots != 2:
        raise Unauthenticated("malformed_token", f"{dots + 1} segments, not 3")
    header_segment, payload_segment, signature_segment = token.split(".")
    header, alg, kid = _parse_header(header_segment)
    claims = _json_object(payload_segment, "payload")
    if _deeper_than(claims, max_claims_depth):
        raise Unauthenticated("malformed_claims", f"claims nest deeper than {max_claims_depth} levels")
    signature = _b64decode(signature_segment, "signature") if signature_segment else b""
    if not signature:
        raise Unauthenticated("missing_signature", "empty signature")
    # Both segments are base64url (checked above), so the slice is ASCII.
    signing_input = token[: len(header_segment) + 1 + len(payload_segment)].encode("ascii")
    return UnverifiedToken(header, claims, signing_input, signature, alg, kid)


def _parse_header(segment: str) -> tuple[Mapping[str, Any], str, str | None]:
    """The decoded header, its alg and kid; from the cache when this exact text passed before."""
    cached = _VALID_HEADERS.get(segment)
    if cached is not None:
        return cached
    header = _json_object(segment, "header")
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise Unauthenticated("malformed_token", "header has no alg")
    if "enc" in header:
        raise Unauthenticated("encrypted_token_not_accepted", "header has enc: a JWE")
    if "crit" in header:
        raise Unauthenticated("unsupported_critical_header", "crit names extensions we do not implement")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= 256):
        raise Unauthenticated("malformed_token", "kid is not a short string")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES):
        raise Unauthenticated("wrong_token_type", "typ is not a JWT access token type")
    if len(_VALID_HEADERS) >= _HEADER_CACHE_SIZE:
        _VALID_HEADERS.clear()
    # Read-only: one header object is shared by every token that carries this exact text.
    parsed = _VALID_HEADERS[segment] = (MappingProxyType(header), alg, kid)
    return parsed


def check_header(token: UnverifiedToken, config: IssuerConfig) -> None:
    """The issuer's header rules, checked before any key lookup (so junk never costs a fetch)."""
    if token.alg not in config.algorithms:
        raise Unauthenticated("algorithm_not_allowed", "alg is not in the allowlist")
    typ = token.header.get("typ")
    if config.require_access_token_type and (
        not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES
    ):
        raise Unauthenticated("wrong_token_type", "typ must be at+jwt")


def verify_signature(token: UnverifiedToken, keys: Sequence[VerificationKey]) -> str | None:
    """Check the signature against ``keys``; return the ``key_id`` of the key that verified it."""
    engine = _engine(token.alg)
    for key in keys:
        # RFC 7518 §3.4 fixes ECDSA/EdDSA signature sizes; RSA signatures are the modulus size.
        if len(token.signature) != key.signature_bytes:
            continue
        try:
            engine.verify(key.key, token.signing_input, token.signature)
        except Exception:  # noqa: S112 - every failure of one key means "try the next"
            continue
        return key.key_id
    raise Unauthenticated("invalid_signature", "no key verified the signature")


#: JSON numbers decode to exactly these types; ``type() in`` also refuses bool, an int subclass.
_NUMBER_TYPES = (int, float)


def _numeric_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        if name in claims:  # present but null
            raise Unauthenticated("malformed_claims", f"{name} is not a number")
        return None
    if type(value) not in _NUMBER_TYPES or not math.isfinite(value):
        raise Unauthenticated("malformed_claims", f"{name} is not a number")
    return float(value)


class ValidityWindow(NamedTuple):
    """When a token is valid, leeway included: ``valid_from <= now <= valid_until``."""

    valid_from: float
    valid_until: float
    #: What ``cnf`` binds the token to; None for a bearer token.
    binding: Binding | None = None


def check_claims(claims: Mapping[str, Any], config: IssuerConfig, *, now: float) -> ValidityWindow:
    """RFC 7519 §4.1 / RFC 9068 §4 claim checks. ``iss`` was matched to ``config`` already.

    Returns the token's validity window (from its nbf/iat and exp), so a cached token can be
    checked against the clock again without re-reading its claims."""
    leeway = config.leeway_s
    exp = _numeric_claim(claims, "exp")
    nbf = _numeric_claim(claims, "nbf")
    iat = _numeric_claim(claims, "iat")
    if exp is None:
        if config.require_exp:
            raise Unauthenticated("missing_claim", "exp is required")
    elif now > exp + leeway:
        raise Unauthenticated("token_expired", "exp is in the past")
    if nbf is not None and now + leeway < nbf:
        raise Unauthenticated("token_not_yet_valid", "nbf is in the future")
    if iat is not None and now + leeway < iat:
        raise Unauthenticated("token_not_yet_valid", "iat is in the future")
    sub = claims.get("sub")
    if "sub" in claims and (not isinstance(sub, str) or not sub):
        raise Unauthenticated("malformed_claims", "sub is not a string")
    aud = claims.get("aud")
    if isinstance(aud, str):  # the common case, checked without building a list
        ours = aud in config.audiences
    else:
        audiences: Sequence[Any] = aud if isinstance(aud, list) else ()
        if "aud" in claims and (not audiences or not all(isinstance(a, str) for a in audiences)):
            raise Unauthenticated("malformed_claims", "aud is not a string or a list of strings")
        ours = any(a in config.audiences for a in audiences)
    if not ours and not config.allow_any_audience:
        raise Unauthenticated("audience_mismatch", "aud names none of our audiences")
    if config.required_claims:
        missing = [name for name in config.required_claims if name not in claims]
        if missing:
            raise Unauthenticated("missing_claim", f"required claims missing: {', '.join(missing)}")
    # Valid from the later of nbf and iat (the cache re-checks both on every hit).
    if nbf is None:
        start = iat
    elif iat is None:
        start = nbf
    else:
        start = max(nbf, iat)
    return ValidityWindow(
        valid_from=(-math.inf if start is None else start) - leeway,
        valid_until=(math.inf if exp is None else exp) + leeway,
        binding=token_binding(claims),
    )


class Binding(NamedTuple):
    """What a token's ``cnf`` claim (RFC 7800) binds it to; its holder must prove it on every call."""

    #: RFC 9449 §6.1: the RFC 7638 thumbprint of the DPoP key.
    jkt: str | None
    #: RFC 8705 §3.1: the SHA-256 thumbprint of the client certificate.
    x5t_s256: str | None


#: The confirmation methods we can check; a token bound by any other is refused (we cannot prove it).
_CONFIRMATION_MEMBERS = frozenset({"jkt", "x5t#S256"})


def token_binding(claims: Mapping[str, Any]) -> Binding | None:
    """The token's binding, None for an unbound token. A ``cnf`` we cannot check is refused:
    accepted as unbound, its binding would protect nothing (RFC 7800 §3.1)."""
    if "cnf" not in claims:
        return None
    cnf = claims["cnf"]
    if not isinstance(cnf, dict) or not cnf:
        raise Unauthenticated("unsupported_confirmation", "cnf is not an object")
    if not cnf.keys() <= _CONFIRMATION_MEMBERS:
        raise Unauthenticated("unsupported_confirmation", "cnf names a confirmation method we cannot check")
    jkt, x5t = cnf.get("jkt"), cnf.get("x5t#S256")
    for value in (jkt, x5t):
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 128):
            raise Unauthenticated("unsupported_confirmation", "cnf thumbprint is not a short string")
    return Binding(jkt, x5t)


def decode_segment(segment: str, what: str, reason: str) -> bytes:
    """``segment`` as strict base64url, or ``Unauthenticated(reason)`` (for DPoP proofs)."""
    try:
        return _b64decode(segment, what)
    except Unauthenticated as error:
        raise Unauthenticated(reason, error.detail) from None


def decode_object(segment: str, what: str, reason: str) -> dict[str, Any]:
    """``segment`` as a strict base64url JSON object, or ``Unauthenticated(reason)``."""
    try:
        return _json_object(segment, what)
    except Unauthenticated as error:
        raise Unauthenticated(reason, error.detail) from None


def signature_verifies(alg: str, key: VerificationKey, signing_input: bytes, signature: bytes) -> bool:
    """Whether ``signature`` over ``signing_input`` verifies with ``key`` by ``alg`` (a DPoP proof
    and the key in its own header: the one other signature jwt_authn checks)."""
    if len(signature) != key.signature_bytes:
        return False
    try:
        _engine(alg).verify(key.key, signing_input, signature)
    except Exception:
        return False
    return True
