"""Server-provided DPoP nonces (RFC 9449 §8), rotated on a schedule, kept nowhere.

A nonce is the number of the current rotation period and an HMAC of it: any replica holding the
same secret can check it, nothing is stored, and a nonce is good for the current period and the
one before (so a client is never refused for a nonce handed out a moment ago).

Usage:
    nonces = NonceSource(secret, rotation_s=300)
    header_value = nonces.current(now)
    assert nonces.is_valid(header_value, now)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["NonceSource"]

_MAC_BYTES = 16


class NonceSource:
    def __init__(self, secret: bytes | None, *, rotation_s: float) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._rotation_s = rotation_s

    def _nonce(self, period: int) -> str:
        counter = period.to_bytes(8, "big", signed=True)
        mac = hmac.digest(self._secret, b"dpop-nonce" + counter, hashlib.sha256)[:_MAC_BYTES]
        return base64.urlsafe_b64encode(counter + mac).rstrip(b"=").decode("ascii")

    def _period(self, now: float) -> int:
        return int(now // self._rotation_s)

    def current(self, now: float) -> str:
        """The nonce to hand out now (``DPoP-Nonce``)."""
        return self._nonce(self._period(now))

    def is_valid(self, nonce: str, now: float) -> bool:
        """``nonce`` is the current period's or the previous one's."""
        period = self._period(now)
        # Bytes: compare_digest refuses non-ASCII str, and the nonce is the caller's text.
        given = nonce.encode("utf-8", "surrogatepass")
        return any(hmac.compare_digest(given, self._nonce(p).encode("ascii")) for p in (period, period - 1))
