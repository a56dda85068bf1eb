"""``/authorize``: the authorization-code flow's browser half (RFC 6749 §4.1, PKCE RFC 7636).

GET checks the request and shows the login page; POST takes the user's answer and redirects
to the client with a code. Until the client and redirect URI are known good, errors are shown
here and never redirected (RFC 6749 §4.1.2.1: an open redirector leaks codes); after that
they go back to the client as ``error=...`` with ``state`` unchanged.

Usage:
    GET  /authorize?response_type=code&client_id=postman&redirect_uri=...&code_challenge=...
         &code_challenge_method=S256&state=xyz&scope=openid%20read
    POST /authorize  login=<id>&username=alice&role=admin&action=approve
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web
from multidict import MultiMapping

from dev_issuer.config import ClientConfig, IssuerConfig
from dev_issuer.grants import AuthorizationCode, PendingLogin
from dev_issuer.login_page import error_page, login_page
from dev_issuer.oauth_errors import OAuthError
from dev_issuer.params import SUBJECT_PATTERN, parse_audience, parse_scope, read_form, single
from dev_issuer.pkce import check_challenge
from dev_issuer.state import STATE

__all__ = ["authorize_get", "authorize_post", "redirect_uri_registered"]

_log = logging.getLogger(__name__)
_LOOPBACK_IPS = ("127.0.0.1", "::1")


def redirect_uri_registered(uri: str, client: ClientConfig) -> bool:
    """Exact match, except that a loopback IP redirect matches on any port (RFC 8252 §7.3)."""
    if uri in client.redirect_uris:
        return True
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_IPS or port is None:
        return False
    if parts.username is not None or parts.password is not None or parts.fragment:
        return False
    host = "[::1]" if parts.hostname == "::1" else "127.0.0.1"
    return urlunsplit(("http", host, parts.path, parts.query, "")) in client.redirect_uris


def _with_params(uri: str, params: dict[str, str | None]) -> str:
    """Add query parameters, keeping the URI's own query (RFC 6749 §3.1.2 says it must be kept)."""
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def _check_request(query: MultiMapping[Any], client: ClientConfig, config: IssuerConfig) -> PendingLogin:
    """Everything after client and redirect URI; raises OAuthError to be sent back to the client."""
    response_type = single(query, "response_type")
    if response_type is None:
        raise OAuthError("invalid_request", "missing parameter 'response_type'")
    if response_type != "code":
        raise OAuthError("unsupported_response_type", "only response_type=code is supported")
    if "authorization_code" not in client.grant_types:
        raise OAuthError("unauthorized_client", f"{client.client_id} may not use the authorization code flow")
    try:
        challenge = check_challenge(single(query, "code_challenge"), single(query, "code_challenge_method"))
    except ValueError as exc:
        raise OAuthError("invalid_request", str(exc)) from None
    return PendingLogin(
        client_id=client.client_id,
        redirect_uri=single(query, "redirect_uri") or "",
        state=single(query, "state"),
        scopes=parse_scope(single(query, "scope"), config, default=client.default_scope),
        audience=parse_audience(single(query, "audience"), config),
        code_challenge=challenge,
        nonce=single(query, "nonce"),
    )


async def authorize_get(request: web.Request) -> web.Response:
    """Validate the authorization request and show the login page."""
    state = request.app[STATE]
    query = request.query
    try:
        client_id = single(query, "client_id")
        redirect_uri = single(query, "redirect_uri")
    except OAuthError as exc:
        return error_page(exc.description)
    client = state.config.client(client_id) if client_id else None
    if client is None:
        return error_page("unknown or missing client_id")
    if redirect_uri is None or not redirect_uri_registered(redirect_uri, client):
        return error_page(f"redirect_uri is missing or not registered for client {client.client_id}")
    try:
        pending = _check_request(query, client, state.config)
    except OAuthError as exc:
        try:
            client_state = single(query, "state")
        except OAuthError:
            client_state = None
        return _redirect(
            _with_params(
                redirect_uri,
                {"error": exc.error, "error_description": exc.description, "state": client_state},
            )
        )
    login_id = state.logins.put(pending)
    return login_page(state.config, pending, login_id=login_id)


async def authorize_post(request: web.Request) -> web.Response:
    """Take the user's answer from the login page and redirect back to the client."""
    state = request.app[STATE]
    try:
        form = await read_form(request)
        login_id = single(form, "login")
        action = single(form, "action") or "approve"
        username = single(form, "username") or ""
        roles = tuple(dict.fromkeys(str(r) for r in form.getall("role", [])))
    except OAuthError as exc:
        return error_page(exc.description)
    pending = state.logins.peek(login_id) if login_id else None
    if login_id is None or pending is None:
        return error_page("this sign-in has expired or was already used; start again from the client")
    if action == "deny":
        state.logins.take(login_id)
        return _redirect(
            _with_params(
                pending.redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "the user denied access",
                    "state": pending.state,
                },
            )
        )
    if not SUBJECT_PATTERN.fullmatch(username):
        return login_page(
            state.config,
            pending,
            login_id=login_id,
            # Kept so the person can correct it; escaped on output, and never becomes a subject.
            username=username,
            roles=tuple(r for r in roles if r in state.config.roles_offered),
            username_error="Username: 1-128 characters of letters, digits and . _ @ + : | -",
        )
    unknown = [r for r in roles if r not in state.config.roles_offered]
    if unknown:
        return login_page(
            state.config, pending, login_id=login_id, username=username, error="Pick roles from the list"
        )
    # take(): the login page is single-use, like the code it produces.
    if state.logins.take(login_id) is None:
        return error_page("this sign-in has expired or was already used; start again from the client")
    code = state.codes.put(
        AuthorizationCode(
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            code_challenge=pending.code_challenge,
            subject=username,
            roles=roles,
            scopes=pending.scopes,
            audience=pending.audience,
            nonce=pending.nonce,
        )
    )
    _log.info("user %s signed in for client %s; redirecting with a code", username, pending.client_id)
    return _redirect(_with_params(pending.redirect_uri, {"code": code, "state": pending.state}))
