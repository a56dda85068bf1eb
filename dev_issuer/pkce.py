"""PKCE, S256 only (RFC 7636).

``plain`` is refused: it protects nothing once the authorization request leaks, and OAuth 2.1
(draft-ietf-oauth-v2-1 §4.1.1) tells servers to support S256. A missing method is refused too,
because RFC 7636 §4.3 defines a missing method as ``plain``.

Usage:
    challenge = check_challenge(challenge, method)  # at /authorize: raises ValueError
    verifier_matches(verifier, challenge)           # at /token: True or False
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["challenge_for", "check_challenge", "verifier_matches"]

# RFC 7636 §4.1: code-verifier = 43*128unreserved
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# An S256 challenge is BASE64URL(SHA-256(verifier)) without padding: exactly 43 characters.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def challenge_for(verifier: str) -> str:
    """BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_challenge(challenge: str | None, method: str | None) -> str:
    """The challenge, if it is a well-formed S256 one; otherwise ValueError with a safe message."""
    if not challenge:
        raise ValueError("code_challenge is required (PKCE, RFC 7636)")
    if method != "S256":
        raise ValueError("code_challenge_method must be S256 (plain is not supported)")
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise ValueError("code_challenge is not a base64url SHA-256 value")
    return challenge


def verifier_matches(verifier: str, challenge: str) -> bool:
    """True when the verifier is well formed and hashes to the challenge (constant-time compare)."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(challenge_for(verifier), challenge)
