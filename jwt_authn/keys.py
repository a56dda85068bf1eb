"""Turn one untrusted JWKS document into verification keys, one key at a time.

jwcrypto's ``JWKSet.import_keyset`` fails whole when one key is bad; RFC 7517 §5 says to skip
the key instead, so each entry is imported on its own. Private and symmetric keys are dropped
(a JWKS is public; an ``oct`` key would enable HMAC key confusion, RFC 8725 §2.1).

Usage:
    key_set = KeySet.from_document(document, max_keys=64)
    for key in key_set.candidates(kid="abc", alg="RS256", limit=4): ...
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jwcrypto import jwk

__all__ = ["KeyRejected", "KeySet", "VerificationKey", "import_public_key", "key_fits_algorithm"]

log = logging.getLogger(__name__)

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_SIGNING_CURVES = {"EC": frozenset({"P-256", "P-384", "P-521"}), "OKP": frozenset({"Ed25519", "Ed448"})}
#: RFC 7518 §3.3/§3.5: RSA keys of 2048 bits or more.
_MIN_RSA_BITS = 2048
_MAX_RSA_BITS = 16384
#: Which key an algorithm needs: (kty, curve or None for any size RSA).
_ALGORITHM_KEYS: dict[str, tuple[str, frozenset[str] | None]] = {
    **{f"{p}{n}": ("RSA", None) for p in ("RS", "PS") for n in (256, 384, 512)},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
#: Signature length in bytes for curve-based algorithms (RFC 7518 §3.4, RFC 8037 §3.1).
_SIGNATURE_BYTES = {"P-256": 64, "P-384": 96, "P-521": 132, "Ed25519": 64, "Ed448": 114}


class KeyRejected(ValueError):
    """One JWKS entry that cannot be used for verification."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key imported once, with what it may verify."""

    kid: str | None
    #: The key's identity within its issuer: its kid (if any) and its RFC 7638 thumbprint. The
    #: thumbprint makes new key material behind an old kid a different key, so whatever was
    #: verified with the old material is forgotten with it.
    key_id: str
    kty: str
    crv: str | None
    alg: str | None
    #: Exact signature length this key produces, bytes.
    signature_bytes: int
    key: jwk.JWK


def key_fits_algorithm(key: VerificationKey, alg: str) -> bool:
    """The key's type and curve suit ``alg``, and the key's own ``alg`` (if any) is ``alg``."""
    wanted = _ALGORITHM_KEYS.get(alg)
    if wanted is None or key.kty != wanted[0]:
        return False
    if wanted[1] is not None and key.crv not in wanted[1]:
        return False
    return key.alg is None or key.alg == alg


def _import_entry(entry: Any) -> VerificationKey:
    if not isinstance(entry, Mapping):
        raise KeyRejected("entry is not an object")
    kty = entry.get("kty")
    if kty == "oct":
        raise KeyRejected("symmetric key dropped")
    if kty not in ("RSA", "EC", "OKP"):
        raise KeyRejected("unsupported key type")
    if _PRIVATE_MEMBERS & entry.keys():
        raise KeyRejected("private key material dropped")
    kid, use, alg, ops = entry.get("kid"), entry.get("use"), entry.get("alg"), entry.get("key_ops")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= 256):
        raise KeyRejected("kid is not a short string")
    if use is not None and use != "sig":
        raise KeyRejected("key is not for signatures")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise KeyRejected("key_ops does not allow verify")
    if alg is not None and (not isinstance(alg, str) or alg not in _ALGORITHM_KEYS):
        raise KeyRejected("key alg is not an accepted signature algorithm")
    crv = entry.get("crv")
    if crv is not None and not isinstance(crv, str):
        raise KeyRejected("crv is not a string")
    if kty in _SIGNING_CURVES and crv not in _SIGNING_CURVES[kty]:
        raise KeyRejected("curve is not a signature curve")
    # Only the public members jwcrypto needs: nothing else from the document reaches it.
    members = {"kty", "crv", "x", "y", "n", "e"}
    try:
        imported = jwk.JWK(**{k: v for k, v in entry.items() if k in members})
        public = imported.get_op_key("verify", crv) if kty == "EC" else imported.get_op_key("verify")
    except Exception as err:  # jwcrypto raises many types for bad keys; each one only skips the key
        raise KeyRejected(f"key does not import ({type(err).__name__})") from None
    if kty == "RSA":
        bits = public.key_size
        if not _MIN_RSA_BITS <= bits <= _MAX_RSA_BITS:
            raise KeyRejected(f"RSA key of {bits} bits")
        signature_bytes = (bits + 7) // 8
    else:
        signature_bytes = _SIGNATURE_BYTES[str(crv)]
    key_id = f"{kid if kid is not None else ''}#jkt:{imported.thumbprint()}"
    return VerificationKey(
        kid=kid, key_id=key_id, kty=kty, crv=crv, alg=alg, signature_bytes=signature_bytes, key=imported
    )


def import_public_key(entry: Mapping[str, Any]) -> VerificationKey:
    """One public signature key (a DPoP proof's ``jwk``), with the checks a JWKS entry gets:
    private members, symmetric keys, unknown types and curves and small RSA keys are refused
    (``KeyRejected``). Its RFC 7638 thumbprint ends ``key_id``, after ``#jkt:``."""
    return _import_entry(entry)


@dataclass(frozen=True, slots=True)
class KeySet:
    """An immutable snapshot of an issuer's usable keys."""

    keys: tuple[VerificationKey, ...]
    by_kid: Mapping[str, tuple[VerificationKey, ...]]
    #: ``candidates`` answers by (kid, alg), filled on first use: the key set never changes.
    _fitting: dict[tuple[str | None, str], tuple[VerificationKey, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, max_keys: int, source: str = "jwks") -> KeySet:
        """Import every usable key of a JWKS document (skipping, with a warning, each bad one)."""
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise ValueError(f"{source}: not a JWKS document (no 'keys' list)")
        keys: list[VerificationKey] = []
        for index, entry in enumerate(entries[: max_keys * 4]):
            try:
                keys.append(_import_entry(entry))
            except KeyRejected as err:
                log.warning("%s: key #%d skipped: %s", source, index, err)
            if len(keys) == max_keys:
                log.warning("%s: more than %d usable keys; the rest are ignored", source, max_keys)
                break
        by_kid: dict[str, tuple[VerificationKey, ...]] = {}
        for key in keys:
            if key.kid is not None:
                by_kid[key.kid] = (*by_kid.get(key.kid, ()), key)
        return cls(keys=tuple(keys), by_kid=by_kid)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self.by_kid)

    @property
    def key_ids(self) -> frozenset[str]:
        """Identities of every key, kid-less ones included (see ``VerificationKey.key_id``)."""
        return frozenset(k.key_id for k in self.keys)

    def candidates(self, kid: str | None, alg: str, *, limit: int) -> tuple[VerificationKey, ...]:
        """Keys that may have signed a token with this ``kid`` and ``alg``."""
        found = self._fitting.get((kid, alg))
        if found is None:
            pool = self.by_kid.get(kid, ()) if kid is not None else self.keys
            found = tuple(k for k in pool if key_fits_algorithm(k, alg))
            # Only pairs of one of our kids (or none) and a known alg are kept: junk cannot grow it.
            if pool and alg in _ALGORITHM_KEYS:
                self._fitting[(kid, alg)] = found
        return found[:limit]
