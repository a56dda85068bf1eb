"""Signed tokens: RFC 9068 access tokens and OIDC ID tokens.

Usage:
    token = mint_access_token(
        key, AccessTokenRequest(issuer=url, subject="alice", audience="secureroute",
                                client_id="secureroute-dev", scopes=("read",), roles=("admin",), ttl_s=600),
        now=time.time(),
    )
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from jwcrypto.jwt import JWT

from dev_issuer.keys import SigningKey

__all__ = ["AccessTokenRequest", "mint_access_token", "mint_id_token"]


@dataclass(frozen=True, kw_only=True, slots=True)
class AccessTokenRequest:
    """What an access token says, once the grant has been checked."""

    issuer: str
    subject: str
    audience: str
    client_id: str
    scopes: tuple[str, ...]
    roles: tuple[str, ...]
    ttl_s: int


def _sign(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    token = JWT(header={**header, "alg": key.alg, "kid": key.kid}, claims=claims)
    token.make_signed_token(key.jwk)
    return str(token.serialize())


def mint_access_token(key: SigningKey, request: AccessTokenRequest, *, now: float) -> str:
    """An RFC 9068 JWT access token: ``typ: at+jwt`` and the §2.2 claims, plus ``roles`` (§2.2.3.1)."""
    iat = int(now)
    claims = {
        "iss": request.issuer,
        "sub": request.subject,
        "aud": request.audience,
        "exp": iat + request.ttl_s,
        "iat": iat,
        "nbf": iat,
        "jti": secrets.token_urlsafe(16),
        "client_id": request.client_id,
        "scope": " ".join(request.scopes),
        "roles": list(request.roles),
    }
    # RFC 9068 §2.1: "at+jwt" tells verifiers this is an access token, not an ID token.
    return _sign(key, {"typ": "at+jwt"}, claims)


def mint_id_token(
    key: SigningKey, *, issuer: str, subject: str, client_id: str, nonce: str | None, ttl_s: int, now: float
) -> str:
    """An OIDC ID token (OIDC Core §2) for a client that asked for the ``openid`` scope."""
    iat = int(now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": client_id,
        "azp": client_id,
        "exp": iat + ttl_s,
        "iat": iat,
        "auth_time": iat,
        "preferred_username": subject,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return _sign(key, {"typ": "JWT"}, claims)
