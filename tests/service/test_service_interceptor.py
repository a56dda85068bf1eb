"""The service's one interceptor builds each method's handler once, not on every call, and asks the
guard once per call.

Direct calls of ``intercept_service`` with a fixed continuation; what the built handlers do is
checked against a real server in tests/ops/test_ops_metrics.py and tests/service/.
"""

from __future__ import annotations

from typing import Any

import grpc

from jwt_authn import AsyncAuthInterceptor, Authenticator, AuthnConfig, IssuerConfig, Policy
from service.admission import AnonymousAdmission
from service.call_pipeline import CallPipeline
from service.metrics import ServiceMetrics

SECURE = "/secureroute.v1.SecureRouteService/SecureRoute"
HEALTH = "/secureroute.v1.SecureRouteService/Health"


class _Details:
    def __init__(self, method: str, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.method = method
        self.invocation_metadata = metadata


async def _behavior(request: Any, context: Any) -> bytes:
    return b""


def _handler() -> Any:
    return grpc.unary_unary_rpc_method_handler(_behavior)


class _CountingGuard(AsyncAuthInterceptor):
    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__(authenticator)
        self.calls = 0

    async def guard(self, handler: Any, handler_call_details: Any, continuation: Any = None) -> Any:
        self.calls += 1
        return await super().guard(handler, handler_call_details, continuation)


def _interceptor() -> tuple[CallPipeline, _CountingGuard]:
    config = AuthnConfig(
        issuers=(IssuerConfig(issuer="https://idp.example.com/", audiences=("secureroute",)),),
        policy=Policy(public_methods=(HEALTH,)),
    )
    authenticator = Authenticator(config)  # never started: no key is needed to refuse a missing token
    admission = AnonymousAdmission(
        max_unary=4, max_streams=4, max_per_connection=2, max_per_address=2, message_timeout_s=1.0
    )
    guard = _CountingGuard(authenticator)
    return CallPipeline(ServiceMetrics(), guard, admission, authenticator), guard


async def _intercept(interceptor: CallPipeline, method: str, handler: Any) -> Any:
    async def continuation(details: Any) -> Any:
        return handler

    return await interceptor.intercept_service(continuation, _Details(method))


async def test_a_public_method_s_handler_is_admitted_and_observed_once_and_rebuilt_when_it_changes() -> None:
    interceptor, guard = _interceptor()
    registered = _handler()
    first = await _intercept(interceptor, HEALTH, registered)
    assert first is not registered and first.request_streaming  # admission's copy: runs at arrival
    assert await _intercept(interceptor, HEALTH, registered) is first
    assert guard.calls == 2  # the guard decided each call, once
    other = await _intercept(interceptor, HEALTH, _handler())
    assert other is not first
    again = await _intercept(interceptor, HEALTH, registered)
    assert again is not other and await _intercept(interceptor, HEALTH, registered) is again
    # Each method has its own copy, even for one handler object (its metrics carry the method).
    assert await _intercept(interceptor, HEALTH + "2", registered) is not again


async def test_a_refusal_is_the_guards_own_handler_observed_per_call() -> None:
    interceptor, guard = _interceptor()
    registered = _handler()
    first = await _intercept(interceptor, SECURE, registered)
    second = await _intercept(interceptor, SECURE, registered)
    assert first is not second and first.request_streaming and second.request_streaming
    assert guard.calls == 2


async def test_an_unknown_method_stays_unimplemented_without_asking_the_guard() -> None:
    interceptor, guard = _interceptor()
    assert await _intercept(interceptor, "/nope.Nope/Nope", None) is None
    assert guard.calls == 0
