"""The development issuer's aiohttp application and the helpers that put it on a socket.

Routes: ``/.well-known/openid-configuration``, ``/jwks``, ``/token``, ``/authorize`` (GET and
POST) and ``POST /admin/rotate`` (loopback callers only).

Usage:
    sock = bind_socket("127.0.0.1", 0)
    config = IssuerConfig(issuer_url=url_for("127.0.0.1", sock.getsockname()[1]), state_dir=tmp)
    runner = await start_site(create_app(config), sock)
    ...
    await runner.cleanup()
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from dev_issuer.authorize import authorize_get, authorize_post
from dev_issuer.config import SIGNING_ALGORITHMS, IssuerConfig
from dev_issuer.dpop_proof import DPOP_ALGORITHMS
from dev_issuer.keys import generate_key
from dev_issuer.oauth_errors import OAuthError, error_response
from dev_issuer.state import STATE, IssuerState
from dev_issuer.token_endpoint import token_endpoint

__all__ = ["bind_socket", "create_app", "start_site", "url_for"]

_log = logging.getLogger("dev_issuer")
#: Form bodies here are a few hundred bytes; 64 KiB leaves room and bounds hostile ones.
_MAX_BODY_BYTES = 64 * 1024
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _error_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except OAuthError as exc:
        return error_response(exc)
    except web.HTTPException:
        raise  # 404, 405, 413: aiohttp's own answers are right
    except Exception:
        # A bug, not the client's fault: log it for us (never the body, which may hold secrets) and
        # answer without a 500, as promised to clients. The tests assert this line never appears.
        _log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(OAuthError("invalid_request", "the request could not be processed"))


async def _discovery(request: web.Request) -> web.Response:
    config = request.app[STATE].config
    base = config.issuer_url
    document = {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/jwks",
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": list(config.scopes_supported),
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "client_id",
            "scope",
            "roles",
            "cnf",
        ],
        # RFC 9449 §5.1: a token request with a DPoP proof by one of these gets a bound token.
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
    }
    return web.json_response(document, headers=_public_cache(config))


def _public_cache(config: IssuerConfig) -> dict[str, str]:
    """Verifiers may cache discovery and keys this long; a rotated-in key waits as long to sign."""
    return {"Cache-Control": f"public, max-age={config.jwks_max_age_s}"}


async def _jwks(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        state.keys.jwks(), content_type="application/jwk-set+json", headers=_public_cache(state.config)
    )


def _is_loopback_peer(request: web.Request) -> bool:
    try:
        return request.remote is not None and ipaddress.ip_address(request.remote).is_loopback
    except ValueError:
        return False


async def _rotate(request: web.Request) -> web.Response:
    """Publish a new key per algorithm, signing after the JWKS max-age (``?immediate=true``: at once);
    the old ones sign until then and stay published for the grace period after that."""
    # Loopback callers only, even when the issuer listens wider. A browser page could still post
    # here cross-site from the developer's machine, and browsers always send Origin then: refuse it.
    if not _is_loopback_peer(request) or "Origin" in request.headers:
        return web.json_response(
            {
                "error": "forbidden",
                "error_description": "admin endpoints answer loopback, non-browser callers only",
            },
            status=403,
        )
    immediate = request.query.get("immediate", "false")
    if immediate not in ("true", "false"):
        return web.json_response(
            {"error": "invalid_request", "error_description": "immediate must be true or false"}, status=400
        )
    state = request.app[STATE]
    now = state.config.clock()
    # RSA key generation blocks for a while: keep the event loop serving meanwhile.
    new_keys = await asyncio.gather(
        *(asyncio.to_thread(generate_key, alg, now=now) for alg in SIGNING_ALGORITHMS)
    )
    # Real issuers publish a key before signing with it: a verifier that fetched the JWKS just
    # before the rotation keeps it for max-age, and a token with the new kid would be refused
    # (unknown kid) until its next refresh. "immediate" is for tests that need the new key now.
    delay_s = 0 if immediate == "true" else state.config.jwks_max_age_s
    rotation = state.keys.rotate(list(new_keys), publish_delay_s=delay_s)
    at = time.strftime("%H:%M:%S", time.localtime(now + delay_s))
    when = "at once" if delay_s == 0 else f"from {at} (in {delay_s} s, the JWKS max-age)"
    _log.warning(
        "rotated signing keys: published %s, signing %s; retiring %s",
        ", ".join(k.kid for k in rotation.added),
        when,
        ", ".join(k.kid for k in rotation.retiring) or "none",
    )
    return web.json_response(
        {
            "added": [{"kid": k.kid, "alg": k.alg, "signs_from": k.signs_from} for k in rotation.added],
            "retiring": [{"kid": k.kid, "alg": k.alg, "remove_at": k.remove_at} for k in rotation.retiring],
        },
        headers={"Cache-Control": "no-store"},
    )


async def _announce(app: web.Application) -> None:
    state = app[STATE]
    _log.warning(
        "\n  %s\n  DEVELOPMENT ONLY: this OIDC issuer signs tokens for anyone who asks.\n"
        "  Never expose it beyond your machine, never trust its tokens in production.\n"
        "  issuer %s, keys in %s\n  %s",
        "*" * 78,
        state.config.issuer_url,
        state.keys.state_file,
        "*" * 78,
    )


def create_app(config: IssuerConfig) -> web.Application:
    """The issuer application; loads (or creates) its keys now, so a bad state dir fails here."""
    app = web.Application(middlewares=[_error_middleware], client_max_size=_MAX_BODY_BYTES)
    app[STATE] = IssuerState.open(config)
    app.on_startup.append(_announce)
    app.router.add_get("/.well-known/openid-configuration", _discovery)
    app.router.add_get("/jwks", _jwks)
    app.router.add_post("/token", token_endpoint)
    app.router.add_get("/authorize", authorize_get)
    app.router.add_post("/authorize", authorize_post)
    app.router.add_post("/admin/rotate", _rotate)
    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; binding before building the app tells port 0's real port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=128)


def url_for(host: str, port: int) -> str:
    """``http://host:port``, with brackets around an IPv6 literal."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def start_site(app: web.Application, sock: socket.socket, *, access_log: bool = True) -> web.AppRunner:
    """Serve ``app`` on ``sock``; ``await runner.cleanup()`` stops it."""
    runner = web.AppRunner(app, access_log=_log.getChild("access") if access_log else None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner
