"""Signed tokens: RFC 9068 access tokens and OIDC ID tokens, minted by ``jwt_authn.testing.TokenFactory``.

The guard's token factory is the project's one token minter (embedders use it in their tests);
this module only decides what the development issuer's tokens say.

Usage:
    token = mint_access_token(
        key, AccessTokenRequest(issuer=url, subject="alice", audience="secureroute",
                                client_id="secureroute-dev", scopes=("read",), roles=("admin",), ttl_s=600),
        now=time.time(),
    )
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dev_issuer.keys import SigningKey
from jwt_authn.testing import TokenFactory

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
    #: RFC 7638 thumbprint of the client's DPoP key: the token is bound to it (``cnf.jkt``,
    #: RFC 9449 §6.1). None: a bearer token.
    jkt: str | None = None


def _factory(issuer: str, key: SigningKey) -> TokenFactory:
    # One algorithm, with the issuer's own key: the factory generates no key of its own. The
    # audience is always given per token, so the factory's default never matters.
    return TokenFactory(issuer=issuer, algorithms=(key.alg,), keys={key.alg: key.jwk})


def mint_access_token(key: SigningKey, request: AccessTokenRequest, *, now: float) -> str:
    """An RFC 9068 JWT access token: ``typ: at+jwt`` and the §2.2 claims, plus ``roles`` (§2.2.3.1)."""
    # The factory writes iss, sub, aud, iat, exp, jti and the at+jwt header (RFC 9068 §2.1: it
    # tells verifiers this is an access token, not an ID token); nbf and client_id are ours.
    return _factory(request.issuer, key).issue(
        sub=request.subject,
        aud=request.audience,
        scope=" ".join(request.scopes),
        roles=request.roles,
        ttl_s=request.ttl_s,
        alg=key.alg,
        now=now,
        claims={
            "nbf": int(now),
            "client_id": request.client_id,
            **({"cnf": {"jkt": request.jkt}} if request.jkt is not None else {}),
        },
    )


def mint_id_token(
    key: SigningKey, *, issuer: str, subject: str, client_id: str, nonce: str | None, ttl_s: int, now: float
) -> str:
    """An OIDC ID token (OIDC Core §2) for a client that asked for the ``openid`` scope."""
    claims: dict[str, Any] = {"azp": client_id, "auth_time": int(now), "preferred_username": subject}
    if nonce is not None:
        claims["nonce"] = nonce
    return _factory(issuer, key).issue(
        sub=subject,
        aud=client_id,
        ttl_s=ttl_s,
        alg=key.alg,
        now=now,
        claims=claims,
        headers={"typ": "JWT"},
        # An access token's client_id claim has no place in an ID token (OIDC Core §2 uses azp).
        drop=("client_id",),
    )
