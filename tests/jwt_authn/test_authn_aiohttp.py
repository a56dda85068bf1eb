"""The aiohttp adapter through a real aiohttp app on 127.0.0.1 and a real loopback issuer.

One ``Policy`` names the routes like gRPC methods: a public ping, a route needing a scope, and a
plainly protected one; an unnamed route and a class-based view show the deny-by-default rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from authn_helpers import serve_on_loopback, subject_or_anonymous
from helpers import fetch

from jwt_authn import Authenticator, AuthnConfig, Policy, Requirement
from jwt_authn.aiohttp import authn_middleware, operation

PING, ORDERS, CREATE = "/shop.v1.Orders/Ping", "/shop.v1.Orders/List", "/shop.v1.Orders/Create"
BROWSE = "/shop.v1.Orders/Browse"
POLICY = Policy(
    public_methods=(PING,),
    allow_missing_methods=(BROWSE,),
    requirements={CREATE: Requirement(scopes=frozenset({"orders.write"}))},
)
WAIT_S = 10.0


@operation(PING)
async def ping(request: web.Request) -> web.Response:
    return web.Response(text=subject_or_anonymous())


@operation(ORDERS)
async def list_orders(request: web.Request) -> web.Response:
    return web.Response(text=subject_or_anonymous())


@operation(CREATE)
async def create_order(request: web.Request) -> web.Response:
    return web.Response(text=subject_or_anonymous())


@operation(BROWSE)
async def browse(request: web.Request) -> web.Response:
    return web.Response(text=subject_or_anonymous())


async def unnamed(request: web.Request) -> web.Response:
    return web.Response(text=subject_or_anonymous())


@operation(ORDERS)
class OrdersView(web.View):
    async def get(self) -> web.Response:
        return web.Response(text=subject_or_anonymous())


@pytest.fixture
async def serve(issuer_config: Any) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """``base_url = await serve(issuer_or_url, ready=True)``: the guarded app on loopback."""
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(issuer: Any, *, ready: bool = True, **middleware: Any) -> str:
        authenticator = Authenticator(
            AuthnConfig(issuers=(issuer_config(issuer),), policy=POLICY, realm="shop")
        )
        app = web.Application(middlewares=[authn_middleware(authenticator, **middleware)])
        app.router.add_get("/ping", ping)
        app.router.add_get("/browse", browse)
        app.router.add_get("/orders", list_orders)
        app.router.add_post("/orders", create_order)
        app.router.add_get("/orders/{id}", unnamed)
        app.router.add_view("/view", OrdersView)
        runner, port = await serve_on_loopback(app)
        await authenticator.start()
        cleanups.extend([runner.cleanup, authenticator.close])
        if ready:
            assert await authenticator.wait_ready(WAIT_S)
        return f"http://127.0.0.1:{port}"

    yield start
    for cleanup in reversed(cleanups):
        await cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as session:
        yield session


async def test_public_route_needs_no_token_and_sees_no_principal(serve: Any, http: Any, issuer: Any) -> None:
    url = await serve(issuer)
    assert (await fetch(http, f"{url}/ping"))[:2] == (200, "anonymous")
    assert (await fetch(http, f"{url}/ping", "garbage"))[:2] == (200, "anonymous")


async def test_valid_token_reaches_named_unnamed_and_view_routes_with_the_principal(
    serve: Any, http: Any, issuer: Any
) -> None:
    url = await serve(issuer)
    token = issuer.tokens.issue(sub="alice")
    for path in ("/orders", "/orders/7", "/view"):
        assert (await fetch(http, f"{url}{path}", token))[:2] == (200, "alice")
    # The same kept-alive connection, now without a token: nothing of alice is left behind.
    assert (await fetch(http, f"{url}/ping"))[:2] == (200, "anonymous")


@pytest.mark.parametrize("path", ["/orders", "/orders/7", "/view"])
async def test_every_route_not_public_needs_a_token_with_a_bare_challenge(
    serve: Any, http: Any, issuer: Any, path: str
) -> None:
    status, text, headers = await fetch(http, f"{(await serve(issuer))}{path}")
    assert (status, text, headers["WWW-Authenticate"]) == (401, "missing token", 'Bearer realm="shop"')


async def test_invalid_token_is_401_with_invalid_token_and_never_echoed(
    serve: Any, http: Any, issuer: Any
) -> None:
    token = issuer.tokens.issue(ttl_s=-600)
    status, text, headers = await fetch(http, f"{(await serve(issuer))}/orders", token)
    assert status == 401
    assert (
        headers["WWW-Authenticate"]
        == 'Bearer realm="shop", error="invalid_token", error_description="token expired"'
    )
    assert token not in text + str(dict(headers))


async def test_missing_scope_is_403_with_insufficient_scope(serve: Any, http: Any, issuer: Any) -> None:
    url = await serve(issuer)
    reading, writing = issuer.tokens.issue(scope="orders.read"), issuer.tokens.issue(scope="orders.write")
    status, _, headers = await fetch(http, f"{url}/orders", reading, method="POST")
    assert status == 403
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    assert 'scope="orders.write"' in headers["WWW-Authenticate"]
    assert (await fetch(http, f"{url}/orders", writing, method="POST"))[:2] == (200, "alice")


async def test_unknown_routes_and_methods_keep_404_and_405_without_authenticating(
    serve: Any, http: Any, issuer: Any
) -> None:
    url = await serve(issuer)
    fetches = (issuer.discovery_fetches, issuer.jwks_fetches)
    assert (await fetch(http, f"{url}/nowhere"))[0] == 404
    assert (await fetch(http, f"{url}/nowhere", issuer.tokens.issue()))[0] == 404
    assert (await fetch(http, f"{url}/ping", method="DELETE"))[0] == 405
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == fetches


async def test_no_key_set_is_503_with_retry_after(
    serve: Any, http: Any, issuer: Any, unused_port: Any
) -> None:
    down = f"http://127.0.0.1:{unused_port()}"
    url = await serve(down, ready=False)
    status, _, headers = await fetch(http, f"{url}/orders", issuer.tokens.issue(claims={"iss": down}))
    assert (status, headers["Retry-After"]) == (503, "5")
    assert "WWW-Authenticate" not in headers
    assert (await fetch(http, f"{url}/ping"))[:2] == (200, "anonymous")


def test_operation_names_are_checked_and_the_middleware_wants_an_async_authenticator() -> None:
    with pytest.raises(ValueError, match=r"^operation: "):
        operation("orders.list")
    with pytest.raises(TypeError, match="needs an Authenticator"):
        authn_middleware(object())  # type: ignore[arg-type]


@pytest.mark.parametrize("spaces", [2, 3])
async def test_several_spaces_after_bearer_are_accepted(
    serve: Any, http: Any, issuer: Any, spaces: int
) -> None:
    """RFC 6750 §2.1: ``credentials = "Bearer" 1*SP b64token``."""
    url = await serve(issuer)
    headers = {"Authorization": "Bearer" + " " * spaces + issuer.tokens.issue(sub="alice")}
    async with http.get(f"{url}/orders", headers=headers) as response:
        assert (response.status, await response.text()) == (200, "alice")


async def test_an_allow_missing_route_passes_without_a_token_and_sees_the_principal_of_one_sent(
    serve: Any, http: Any, issuer: Any
) -> None:
    url = await serve(issuer)
    assert (await fetch(http, f"{url}/browse"))[:2] == (200, "anonymous")
    assert (await fetch(http, f"{url}/browse", issuer.tokens.issue(sub="alice")))[:2] == (200, "alice")
    assert (await fetch(http, f"{url}/browse"))[:2] == (200, "anonymous")
    status, text, headers = await fetch(http, f"{url}/browse", issuer.tokens.issue(ttl_s=-600))
    assert (status, text) == (401, "token expired")
    assert headers["WWW-Authenticate"].startswith('Bearer realm="shop", error="invalid_token"')
    assert (await fetch(http, f"{url}/browse", "junk"))[0] == 401


async def test_reject_renders_refusals_with_the_guards_status_and_headers(
    serve: Any, http: Any, issuer: Any
) -> None:
    def as_json(request: web.Request, status: int, text: str, headers: Any) -> web.Response:
        return web.json_response({"refused": text, "path": request.path}, status=status, headers=headers)

    url = await serve(issuer, reject=as_json)
    status, body, headers = await fetch(http, f"{url}/orders", "garbage")
    assert status == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert headers["Content-Type"].startswith("application/json") and '"path": "/orders"' in body
    assert (await fetch(http, f"{url}/ping", "garbage"))[:2] == (200, "anonymous")  # public: no refusal
