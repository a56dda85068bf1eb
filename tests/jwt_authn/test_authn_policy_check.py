"""A policy entry that names nothing must not pass silently (issue 21, point 2).

Real servers on 127.0.0.1:0: a grpc.aio server (``async def`` and plain ``def`` handlers), a
threaded ``grpc.server`` and an aiohttp app. Two services: gRPC's generated health service, added
with its generated ``add_HealthServicer_to_server`` (pre-registered methods, whose threaded lookup
answers any name), and a generic ``test.v1.Echo`` with no descriptor at all (only the server's
lookup knows it). Each adapter logs one error per misspelt entry, naming the closest real method,
stays quiet about entries of another transport's services, and ``require_listed`` fails closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from authn_helpers import serve_on_loopback
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from jwt_authn import (
    PUBLIC_GRPC_INFRA_METHODS,
    AsyncAuthInterceptor,
    Authenticator,
    AuthnConfig,
    IssuerConfig,
    PermissionDenied,
    Policy,
    Requirement,
    SyncAuthenticator,
    SyncAuthInterceptor,
    check_policy,
)
from jwt_authn.aiohttp import authn_middleware, operation, operations_of
from jwt_authn.policy_check import policy_entries, unserved_entries
from jwt_authn.status_map import grpc_rejection, http_rejection

WAIT_S = 10.0
ADMIN = Requirement(scopes=frozenset({"admin"}))
HEALTH, ECHO = "/grpc.health.v1.Health", "/test.v1.Echo"

#: Misspelt entries (entry -> the closest real method the error must name) beside right ones, and
#: an entry of a service this server neither serves nor knows (another transport's: no alarm).
MISSPELT = {
    f"{HEALTH}/Chek": f"{HEALTH}/Check",  # a letter missing
    f"{HEALTH}/watch": f"{HEALTH}/Watch",  # the wrong case: gRPC names are case-sensitive
    "/grpc.health.v1.Helth/*": f"{HEALTH}/*",  # a misspelt service
    f"{ECHO}/Wrte": f"{ECHO}/Write",  # a generic service, known only through the server's lookup
}
POLICY = Policy(
    public_grpc_infra=False,
    public_methods=("/grpc.health.v1.Helth/*",),
    requirements={
        f"{HEALTH}/Chek": ADMIN,
        f"{HEALTH}/watch": ADMIN,
        f"{HEALTH}/Check": ADMIN,
        f"{ECHO}/Write": ADMIN,
        f"{ECHO}/Wrte": ADMIN,
        "/billing.v1.Billing/Charge": ADMIN,  # served elsewhere (say, by the HTTP facade only)
    },
)


def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _aio_echo(request: bytes, context: Any) -> bytes:
    return request


@pytest.fixture(params=["aio", "aio-with-def-handlers", "sync"])
async def serve_grpc(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """``port = await serve_grpc(issuer_config, policy)``: health (generated) and Echo (generic)."""
    kind: str = request.param
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(issuer: IssuerConfig, policy: Policy) -> int:
        config = AuthnConfig(issuers=(issuer,), policy=policy)
        echo = _aio_echo if kind == "aio" else _echo
        echo_handler = grpc.method_handlers_generic_handler(
            ECHO[1:],
            {name: grpc.unary_unary_rpc_method_handler(echo) for name in ("Write", "Read")},
        )
        if kind.startswith("aio"):
            authenticator = Authenticator(config)
            server = grpc.aio.server(interceptors=[AsyncAuthInterceptor(authenticator)])
            await authenticator.start()

            async def stop_aio() -> None:
                await server.stop(0)
                await authenticator.close()

            cleanups.append(stop_aio)
        else:
            sync_authenticator = await asyncio.to_thread(SyncAuthenticator, config, timeout_s=5.0)
            server = grpc.server(
                ThreadPoolExecutor(max_workers=2), interceptors=[SyncAuthInterceptor(sync_authenticator)]
            )

            async def stop_sync() -> None:
                await asyncio.to_thread(lambda: server.stop(0).wait(WAIT_S))
                await asyncio.to_thread(sync_authenticator.close)

            cleanups.append(stop_sync)
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        server.add_generic_rpc_handlers((echo_handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        started = server.start()
        if started is not None:
            await started
        return port

    yield start
    for cleanup in reversed(cleanups):
        await cleanup()


def _policy_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and "policy entry" in r.getMessage()
    ]


async def _call(port: int, method: str, token: str | None = None) -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method)(b"", metadata=metadata)
        try:
            await asyncio.wait_for(call, WAIT_S)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("first_call", [f"{HEALTH}/Check", f"{ECHO}/Read", "/no.such.Service/Call"])
async def test_each_misspelt_entry_is_logged_once_with_the_closest_real_method(
    serve_grpc: Any, issuer: Any, issuer_config: Any, caplog: pytest.LogCaptureFixture, first_call: str
) -> None:
    caplog.set_level(logging.ERROR)
    port = await serve_grpc(issuer_config(issuer), POLICY)
    token = issuer.tokens.issue(sub="alice", scope="admin")
    for _ in range(3):  # the check runs once, whichever method comes first (even an unknown one)
        await _call(port, first_call, token)
        await _call(port, f"{ECHO}/Write", token)
    errors = _policy_errors(caplog)
    assert len(errors) == len(MISSPELT), errors
    for entry, closest in MISSPELT.items():
        assert any(repr(entry) in error and f"did you mean {closest!r}" in error for error in errors), (
            entry,
            errors,
        )
    assert not any("Billing" in error or f"{HEALTH}/Check'" in error.split(";")[0] for error in errors)


async def test_a_right_policy_logs_nothing(
    serve_grpc: Any, issuer: Any, issuer_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    policy = Policy(
        public_methods=(f"{HEALTH}/*",),
        requirements={f"{ECHO}/Write": ADMIN, "/billing.v1.Billing/Charge": ADMIN},
    )
    port = await serve_grpc(issuer_config(issuer), policy)
    assert await _call(port, f"{HEALTH}/Check") == grpc.StatusCode.OK
    assert await _call(port, f"{ECHO}/Write") == grpc.StatusCode.UNAUTHENTICATED
    assert _policy_errors(caplog) == []


async def test_require_listed_refuses_every_method_no_entry_names(
    serve_grpc: Any, issuer: Any, issuer_config: Any
) -> None:
    policy = Policy(require_listed=True, requirements={f"{ECHO}/Write": ADMIN, f"{ECHO}/Wrte": ADMIN})
    port = await serve_grpc(issuer_config(issuer), policy)
    admin = issuer.tokens.issue(sub="alice", scope="admin")
    assert await _call(port, f"{ECHO}/Read", admin) == grpc.StatusCode.PERMISSION_DENIED  # named by no entry
    assert await _call(port, f"{ECHO}/Read") == grpc.StatusCode.PERMISSION_DENIED  # with no token too
    assert await _call(port, f"{ECHO}/Write", admin) == grpc.StatusCode.OK
    assert await _call(port, f"{HEALTH}/Check") == grpc.StatusCode.OK  # infrastructure stays public
    assert await _call(port, "/no.such.Service/Call", admin) == grpc.StatusCode.UNIMPLEMENTED


async def test_without_require_listed_an_unnamed_method_still_needs_a_valid_token(
    serve_grpc: Any, issuer: Any, issuer_config: Any
) -> None:
    port = await serve_grpc(issuer_config(issuer), Policy(requirements={f"{ECHO}/Write": ADMIN}))
    assert await _call(port, f"{ECHO}/Read") == grpc.StatusCode.UNAUTHENTICATED
    assert await _call(port, f"{ECHO}/Read", issuer.tokens.issue(sub="alice")) == grpc.StatusCode.OK


async def test_require_listed_denies_with_a_reason_and_no_challenge(
    make_authenticator: Any, issuer: Any, issuer_config: Any
) -> None:
    authenticator = await make_authenticator(issuer_config(issuer), policy=Policy(require_listed=True))
    assert not authenticator.config.policy.access("/x.v1.Y/Z").listed
    with pytest.raises(PermissionDenied) as caught:
        await authenticator.authenticate(["Bearer " + issuer.tokens.issue()], "/x.v1.Y/Z")
    assert caught.value.reason == "method_not_listed"
    assert grpc_rejection(caught.value) == (grpc.StatusCode.PERMISSION_DENIED, "method not listed", ())
    assert http_rejection(caught.value) == (403, "method not listed", [])


# --- the explicit check, and its rule -----------------------------------------------------------


def test_check_policy_raises_naming_each_entry_and_the_closest_served_method() -> None:
    check_policy(Policy(requirements={f"{HEALTH}/Check": ADMIN}), [health_pb2.DESCRIPTOR])
    check_policy(Policy(public_methods=(f"{HEALTH}/*",)), [health_pb2.DESCRIPTOR.services_by_name["Health"]])
    with pytest.raises(ValueError, match=r"^policy: ") as caught:
        check_policy(POLICY, [health_pb2.DESCRIPTOR, f"{ECHO}/Write", f"{ECHO}/Read"])
    message = str(caught.value)
    for entry, closest in MISSPELT.items():
        assert f"{entry!r} names no method this server serves; did you mean {closest!r}" in message
    assert "'/billing.v1.Billing/Charge' names no method" in message  # strict: served is all there is


def test_check_policy_refuses_what_is_not_a_name_or_a_descriptor() -> None:
    with pytest.raises(TypeError, match="served"):
        check_policy(POLICY, [42])


def test_entries_of_unknown_services_are_reported_only_when_they_look_like_a_typo() -> None:
    described = {"pkg.v1.Orders": ("/pkg.v1.Orders/List", "/pkg.v1.Orders/Create")}.get
    problems = unserved_entries(
        ["/pkg.v1.Orders/Lst", "/pkg.v1.Ordres/List", "/ops.v1.Admin/*", "/pkg.v1.Orders/*"],
        served=["/pkg.v1.Orders/List"],
        described=described,
    )
    assert [(p.entry, p.closest) for p in problems] == [
        ("/pkg.v1.Orders/Lst", "/pkg.v1.Orders/List"),
        ("/pkg.v1.Ordres/List", "/pkg.v1.Orders/List"),
    ]


def test_the_infrastructure_entries_written_out_are_not_reported() -> None:
    # A server with v1alpha reflection only: the v1 entry is one of jwt_authn's own, not a typo.
    served = [f"{HEALTH}/Check", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"]
    policy = Policy(public_methods=(*PUBLIC_GRPC_INFRA_METHODS, "/grpc.reflection.v1.ServerRefection/*"))
    problems = unserved_entries(policy_entries(policy), served)
    assert [problem.entry for problem in problems] == ["/grpc.reflection.v1.ServerRefection/*"]


# --- aiohttp ------------------------------------------------------------------------------------


@operation(f"{ECHO}/Write")
async def _write(request: web.Request) -> web.Response:
    return web.Response(text="written")


@operation(f"{ECHO}/Read")
async def _read(request: web.Request) -> web.Response:
    return web.Response(text="read")


async def _unnamed(request: web.Request) -> web.Response:
    return web.Response(text="unnamed")


async def _serve_app(issuer: IssuerConfig, policy: Policy) -> tuple[str, web.Application, Callable[[], Any]]:
    authenticator = Authenticator(AuthnConfig(issuers=(issuer,), policy=policy))
    app = web.Application(middlewares=[authn_middleware(authenticator)])
    app.router.add_post("/write", _write)
    app.router.add_get("/read", _read)
    app.router.add_get("/unnamed", _unnamed)
    runner, port = await serve_on_loopback(app)
    await authenticator.start()

    async def stop() -> None:
        await runner.cleanup()
        await authenticator.close()

    return f"http://127.0.0.1:{port}", app, stop


async def test_aiohttp_logs_each_misspelt_operation_once_and_trusts_other_transports(
    issuer: Any, issuer_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    # HTTP serves a subset of what gRPC does: the health entries and Billing are the gRPC side's
    # (the health service is known from its generated code, Billing from nowhere: no alarm).
    base, app, stop = await _serve_app(issuer_config(issuer), POLICY)
    try:
        assert operations_of(app) == (f"{ECHO}/Write", f"{ECHO}/Read")
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.get(f"{base}/read") as response:
                    assert response.status == 401
    finally:
        await stop()
    errors = _policy_errors(caplog)
    expected = {entry: closest for entry, closest in MISSPELT.items()}
    assert len(errors) == len(expected), errors
    assert any(f"'{ECHO}/Wrte'" in error and f"did you mean '{ECHO}/Write'" in error for error in errors)


async def test_aiohttp_require_listed_refuses_an_unnamed_route(issuer: Any, issuer_config: Any) -> None:
    policy = Policy(
        require_listed=True, public_methods=(f"{ECHO}/Read",), requirements={f"{ECHO}/Write": ADMIN}
    )
    base, _, stop = await _serve_app(issuer_config(issuer), policy)
    token = issuer.tokens.issue(sub="alice", scope="admin")
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            async with session.get(f"{base}/unnamed") as response:
                assert (response.status, await response.text()) == (403, "method not listed")
                assert "WWW-Authenticate" not in response.headers
            async with session.post(f"{base}/write") as response:
                assert response.status == 200
            async with session.get(f"{base}/read") as response:
                assert response.status == 200
    finally:
        await stop()
