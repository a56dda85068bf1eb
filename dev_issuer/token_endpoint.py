"""``POST /token``: the client_credentials and authorization_code (+ PKCE) grants.

With a valid ``DPoP`` proof header (RFC 9449 §5, checked by ``dpop_proof``), either grant
answers a DPoP-bound token: ``cnf.jkt`` in the token, ``token_type: DPoP`` in the answer.

Every refusal is an ``OAuthError`` (RFC 6749 §5.2); the app's middleware renders it.

Dev-only extension: a client registered with ``may_set_subject`` (``secureroute-dev``) may
add ``sub``, ``roles`` (or repeated ``role``), ``ttl`` and ``alg`` to a client_credentials
request, so scripts and tests can get a token for any user without a browser.

Usage:
    curl -s -u secureroute-dev:secureroute-dev-secret -d grant_type=client_credentials \\
         -d sub=alice -d roles=admin http://127.0.0.1:8080/token
    curl ... -H "DPoP: $(python -m dev_issuer proof --key key.jwk --htu http://127.0.0.1:8080/token)" ...
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from dev_issuer.client_auth import authenticate_client
from dev_issuer.config import ClientConfig
from dev_issuer.dpop_proof import check_token_request_proof
from dev_issuer.oauth_errors import OAuthError, no_store_json
from dev_issuer.params import (
    parse_algorithm,
    parse_audience,
    parse_roles,
    parse_scope,
    parse_subject,
    parse_ttl,
    read_form,
    required,
    single,
)
from dev_issuer.pkce import verifier_matches
from dev_issuer.state import STATE, IssuerState
from dev_issuer.tokens import AccessTokenRequest, mint_access_token, mint_id_token

__all__ = ["token_endpoint"]

_log = logging.getLogger(__name__)
_GRANTS = ("client_credentials", "authorization_code")
_DEV_ONLY_PARAMS = ("sub", "roles", "role", "ttl", "alg")


async def token_endpoint(request: web.Request) -> web.Response:
    """Check the client and the grant, then answer with a bearer token (RFC 6749 §5.1)."""
    state = request.app[STATE]
    form = await read_form(request)
    authorizations = request.headers.getall("Authorization", [])
    if len(authorizations) > 1:
        raise OAuthError("invalid_request", "more than one Authorization header")
    grant_type = required(form, "grant_type")
    client = authenticate_client(authorizations[0] if authorizations else None, form, state.config)
    if grant_type not in _GRANTS:
        raise OAuthError("unsupported_grant_type", f"supported grant types: {', '.join(_GRANTS)}")
    if grant_type not in client.grant_types:
        raise OAuthError("unauthorized_client", f"{client.client_id} may not use {grant_type}")
    # The proof is checked before the grant: an authorization code is single-use, and a bad proof
    # must not cost the client its code.
    jkt = check_token_request_proof(
        request.headers.getall("DPoP", []),
        token_endpoint=f"{state.config.issuer_url}/token",
        now=state.config.clock(),
        seen=state.seen_proofs,
    )
    if grant_type == "client_credentials":
        return _client_credentials(state, client, form, jkt)
    return _authorization_code(state, client, form, jkt)


def _client_credentials(
    state: IssuerState, client: ClientConfig, form: MultiMapping[Any], jkt: str | None
) -> web.Response:
    config = state.config
    scopes = parse_scope(single(form, "scope"), config, default=client.default_scope)
    audience = parse_audience(single(form, "audience"), config)
    if not client.may_set_subject and any(form.getall(name, []) for name in _DEV_ONLY_PARAMS):
        raise OAuthError("invalid_request", f"{client.client_id} may not choose sub, roles, ttl or alg")
    sub = single(form, "sub")
    # RFC 9068 §2.2: without a resource owner, sub identifies the client itself.
    subject = client.client_id if sub is None else parse_subject(sub)
    roles = parse_roles([*form.getall("roles", []), *form.getall("role", [])])
    ttl_s = parse_ttl(single(form, "ttl"), config)
    alg = parse_algorithm(single(form, "alg"), config)
    request = AccessTokenRequest(
        issuer=config.issuer_url,
        subject=subject,
        audience=audience,
        client_id=client.client_id,
        scopes=scopes,
        roles=roles,
        ttl_s=ttl_s,
        jkt=jkt,
    )
    return _issue(state, request, alg=alg, nonce=None, with_id_token=False)


def _authorization_code(
    state: IssuerState, client: ClientConfig, form: MultiMapping[Any], jkt: str | None
) -> web.Response:
    code = required(form, "code")
    redirect_uri = required(form, "redirect_uri")
    verifier = required(form, "code_verifier")
    # take() removes the code whatever happens next: a code gets exactly one try, so a wrong
    # verifier cannot be followed by guesses (RFC 6749 §4.1.2: codes are single-use).
    record = state.codes.take(code)
    if record is None:
        raise OAuthError("invalid_grant", "authorization code is invalid, expired or already used")
    if record.client_id != client.client_id:
        raise OAuthError("invalid_grant", "authorization code was issued to another client")
    if record.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
    if not verifier_matches(verifier, record.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
    request = AccessTokenRequest(
        issuer=state.config.issuer_url,
        subject=record.subject,
        audience=record.audience,
        client_id=client.client_id,
        scopes=record.scopes,
        roles=record.roles,
        ttl_s=state.config.token_ttl_s,
        jkt=jkt,
    )
    return _issue(
        state,
        request,
        alg=state.config.default_algorithm,
        nonce=record.nonce,
        with_id_token="openid" in record.scopes,
    )


def _issue(
    state: IssuerState, request: AccessTokenRequest, *, alg: str, nonce: str | None, with_id_token: bool
) -> web.Response:
    now = state.config.clock()
    key = state.keys.signing_key(alg)
    body: dict[str, object] = {
        "access_token": mint_access_token(key, request, now=now),
        # RFC 9449 §5: a bound token's type is DPoP, so the client knows to send proofs with it.
        "token_type": "Bearer" if request.jkt is None else "DPoP",
        "expires_in": request.ttl_s,
        "scope": " ".join(request.scopes),
    }
    if with_id_token:
        # OIDC Core §3.1.3.7: ID tokens must be verifiable with RS256, which every RP supports.
        body["id_token"] = mint_id_token(
            state.keys.signing_key("RS256"),
            issuer=request.issuer,
            subject=request.subject,
            client_id=request.client_id,
            nonce=nonce,
            ttl_s=request.ttl_s,
            now=now,
        )
    _log.info(
        "issued an access token: client=%s sub=%s aud=%s kid=%s ttl=%ss type=%s",
        request.client_id,
        request.subject,
        request.audience,
        key.kid,
        request.ttl_s,
        body["token_type"],
    )
    return no_store_json(body)
