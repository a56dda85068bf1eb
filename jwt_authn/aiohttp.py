"""The aiohttp adapter: a middleware that guards aiohttp routes with the same Authenticator.

Each route is named for the policy like a gRPC method (``@operation("/shop.v1.Orders/List")``),
so one ``Policy`` decides both transports: public names pass, requirements apply, and every
other route needs a valid token (deny by default; an unnamed route is decided as
``"GET /orders/{id}"``, which no policy entry can name). Unmatched requests keep aiohttp's own
404/405 and never authenticate. Rejections are RFC 6750: 401 and 403 with ``WWW-Authenticate``,
503 with ``Retry-After``, as plain text unless ``reject`` renders them (say, as the app's JSON
errors). The handler reads the caller with ``current_principal()``.

Usage:
    authenticator = Authenticator(config)
    app = web.Application(middlewares=[authn_middleware(authenticator)])

    @operation("/shop.v1.Orders/List")
    async def list_orders(request: web.Request) -> web.Response:
        return web.json_response({"for": current_principal().subject})
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from jwt_authn.authenticator import Authenticator
from jwt_authn.config import check_method_name
from jwt_authn.errors import AuthnError
from jwt_authn.principal import principal_var
from jwt_authn.status_map import http_rejection

__all__ = ["Reject", "authn_middleware", "operation"]

log = logging.getLogger(__name__)

_OPERATION_ATTRIBUTE = "__jwt_authn_operation__"
HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])
#: Renders a rejection: ``reject(request, status, text, headers)``; the headers (the RFC 6750
#: challenge, ``Retry-After``) must reach the client unchanged.
Reject = Callable[[web.Request, int, str, Mapping[str, str]], web.StreamResponse]


def _plain_text(request: web.Request, status: int, text: str, headers: Mapping[str, str]) -> web.Response:
    return web.Response(status=status, text=text, headers=headers)


def operation(name: str) -> Callable[[HandlerT], HandlerT]:
    """Name a handler (function or class-based view) for the policy, as ``/package.Service/Method``."""
    check_method_name(name, "operation")

    def name_handler(handler: HandlerT) -> HandlerT:
        setattr(handler, _OPERATION_ATTRIBUTE, name)
        return handler

    return name_handler


def _operation_of(request: web.Request) -> str:
    named = getattr(request.match_info.handler, _OPERATION_ATTRIBUTE, None)
    if isinstance(named, str):
        return named
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource is not None else request.path}"


def authn_middleware(authenticator: Authenticator, *, reject: Reject = _plain_text) -> Middleware:
    """A middleware requiring a valid bearer token on every non-public route of an aiohttp app;
    ``reject`` renders its refusals (plain text by default)."""
    if not isinstance(authenticator, Authenticator):
        raise TypeError(f"authn_middleware needs an Authenticator, not {type(authenticator).__name__}")
    realm = authenticator.config.realm

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handler(request)  # 404 or 405: an unknown route is never authenticated
        name = _operation_of(request)
        try:
            principal = await authenticator.authenticate(request.headers.getall("Authorization", []), name)
        except AuthnError as error:
            log.info("rejected %s: %s (%s)", name, error.reason, error.detail)
            status, text, headers = http_rejection(error, realm)
            return reject(request, status, text, headers)
        if principal is None:
            return await handler(request)
        # The handler runs in this task: it sees the principal, and the value dies with the task's
        # step here, not with the connection (kept-alive connections serve many requests).
        reset = principal_var.set(principal)
        try:
            return await handler(request)
        finally:
            principal_var.reset(reset)

    return authenticate
