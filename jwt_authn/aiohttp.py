"""The aiohttp adapter: a middleware that guards aiohttp routes with the same Authenticator.

Each route is named for the policy like a gRPC method (``@operation("/shop.v1.Orders/List")``),
so one ``Policy`` decides both transports: public names pass, requirements apply, and every
other route needs a valid token (deny by default; an unnamed route is decided as
``"GET /orders/{id}"``, which no policy entry can name). Unmatched requests keep aiohttp's own
404/405 and never authenticate. Rejections are RFC 6750: 401 and 403 with ``WWW-Authenticate``,
503 with ``Retry-After``, as plain text unless ``reject`` renders them (say, as the app's JSON
errors). The handler reads the caller with ``current_principal()``.

On the first request the middleware compares the policy with the app's ``@operation`` names and
logs an error for each entry that names nothing (``jwt_authn.policy_check``: entries of services
the app neither routes nor knows from generated code are left to the other transport). For a
check that refuses to start, call ``check_policy(policy, [*operations_of(app), ...])`` in
``on_startup``.

Usage:
    authenticator = Authenticator(config)
    app = web.Application(middlewares=[authn_middleware(authenticator)])

    @operation("/shop.v1.Orders/List")
    async def list_orders(request: web.Request) -> web.Response:
        return web.json_response({"for": current_principal().subject})
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from jwt_authn.authenticator import Authenticator
from jwt_authn.config import DPoPConfig, check_method_name
from jwt_authn.errors import AuthnError
from jwt_authn.policy_check import report_unserved
from jwt_authn.principal import principal_var
from jwt_authn.sender import ProofTarget, SenderContext, certificate_thumbprint
from jwt_authn.status_map import http_rejection

__all__ = ["Reject", "authn_middleware", "operation", "operations_of", "sender_of"]

log = logging.getLogger(__name__)

_OPERATION_ATTRIBUTE = "__jwt_authn_operation__"
HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])
#: Renders a rejection: ``reject(request, status, text, headers)``; the header pairs (the RFC 6750
#: and RFC 9449 challenges, ``DPoP-Nonce``, ``Retry-After``) must reach the client unchanged.
Reject = Callable[[web.Request, int, str, Sequence[tuple[str, str]]], web.StreamResponse]


def _plain_text(
    request: web.Request, status: int, text: str, headers: Sequence[tuple[str, str]]
) -> web.Response:
    return web.Response(status=status, text=text, headers=headers)


def operation(name: str) -> Callable[[HandlerT], HandlerT]:
    """Name a handler (function or class-based view) for the policy, as ``/package.Service/Method``."""
    check_method_name(name, "operation")

    def name_handler(handler: HandlerT) -> HandlerT:
        setattr(handler, _OPERATION_ATTRIBUTE, name)
        return handler

    return name_handler


def operations_of(app: web.Application) -> tuple[str, ...]:
    """The ``@operation`` names of ``app``'s routes (function handlers and class-based views)."""
    named = (getattr(route.handler, _OPERATION_ATTRIBUTE, None) for route in app.router.routes())
    return tuple(dict.fromkeys(name for name in named if isinstance(name, str)))


def _operation_of(request: web.Request) -> str:
    named = getattr(request.match_info.handler, _OPERATION_ATTRIBUTE, None)
    if isinstance(named, str):
        return named
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource is not None else request.path}"


def sender_of(request: web.Request, dpop: DPoPConfig) -> SenderContext:
    """What the request says about its sender: ``DPoP`` proofs, method and URL, forwarded
    ``DPoP-Htm``/``DPoP-Htu`` (honoured from trusted proxies only), the TCP peer's address (never
    a forwarded-for header) and the TLS client certificate's thumbprint (RFC 8705 §3)."""
    headers = request.headers
    proofs = headers.getall("DPoP", ())
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    target = None
    if proofs:
        path = request.rel_url.raw_path  # as sent, without query and fragment (RFC 9449 §4.3)
        bases = dpop.public_base_urls or (f"{request.scheme}://{request.host}",)
        target = ProofTarget(request.method, uris=tuple(base.rstrip("/") + path for base in bases))
    return SenderContext(
        proofs=proofs,
        target=target,
        forwarded_htm=headers.getall("DPoP-Htm", ()),
        forwarded_htu=headers.getall("DPoP-Htu", ()),
        peer_address=peer[0] if isinstance(peer, tuple) and peer else None,
        certificate_thumbprint=certificate_thumbprint(der) if der else None,
    )


def authn_middleware(
    authenticator: Authenticator, *, check_served: bool = True, reject: Reject = _plain_text
) -> Middleware:
    """A middleware requiring a valid bearer token on every non-public route of an aiohttp app.

    ``check_served``: on the first request, log an error for each policy entry naming nothing.
    ``reject`` renders its refusals (plain text by default)."""
    if not isinstance(authenticator, Authenticator):
        raise TypeError(f"authn_middleware needs an Authenticator, not {type(authenticator).__name__}")
    realm = authenticator.config.realm
    check_pending = [check_served]
    dpop = authenticator.config.dpop

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if check_pending[0]:
            check_pending[0] = False
            apps = request.match_info.apps or (request.app,)  # a 404's match knows no app
            served = [name for app in apps for name in operations_of(app)]
            report_unserved(authenticator.config.policy, served, log, "authn_middleware")
        if request.match_info.http_exception is not None:
            return await handler(request)  # 404 or 405: an unknown route is never authenticated
        name = _operation_of(request)
        if authenticator.is_public(name):
            return await handler(request)  # nothing to check: no sender to read either
        try:
            principal = await authenticator.authenticate(
                request.headers.getall("Authorization", []), name, sender=sender_of(request, dpop)
            )
        except AuthnError as error:
            log.info("rejected %s: %s (%s)", name, error.reason, error.detail)
            status, text, headers = http_rejection(error, realm, dpop.algorithms)
            return reject(request, status, text, headers)
        if principal is None:
            return await handler(request)
        # The handler runs in this task: it sees the principal, and the value dies with the task's
        # step here, not with the connection (kept-alive connections serve many requests).
        reset = principal_var.set(principal)
        try:
            response = await handler(request)
        finally:
            principal_var.reset(reset)
        nonces = authenticator.nonces
        if nonces is not None and not response.prepared and "DPoP" in request.headers:
            # RFC 9449 §8.2: the next nonce with a success, so a client never needs a refused call
            # to learn it after a rotation.
            response.headers["DPoP-Nonce"] = nonces.current(authenticator.config.clock())
        return response

    return authenticate
