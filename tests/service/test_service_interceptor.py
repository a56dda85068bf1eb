"""The observing interceptor wraps each method's handler once, not on every call.

Direct calls of ``intercept_service`` with a fixed continuation; what the wrapped handlers
record is checked against a real server in tests/ops/test_ops_metrics.py.
"""

from __future__ import annotations

from typing import Any

import grpc

from service.interceptor import ObservingInterceptor
from service.metrics import ServiceMetrics

METHOD = "/secureroute.v1.SecureRouteService/SecureRoute"


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def _behavior(request: Any, context: Any) -> bytes:
    return b""


def _handler() -> Any:
    return grpc.unary_unary_rpc_method_handler(_behavior)


async def _intercept(interceptor: ObservingInterceptor, method: str, handler: Any) -> Any:
    async def continuation(details: Any) -> Any:
        return handler

    return await interceptor.intercept_service(continuation, _Details(method))


async def test_a_method_s_handler_is_wrapped_once_and_rewrapped_when_it_changes() -> None:
    interceptor = ObservingInterceptor(ServiceMetrics())
    registered, rejecting = _handler(), _handler()
    first = await _intercept(interceptor, METHOD, registered)
    assert first is not registered and first.unary_unary is not registered.unary_unary
    assert await _intercept(interceptor, METHOD, registered) is first
    # Another handler for the same method (a rejection, say) gets its own wrapper...
    other = await _intercept(interceptor, METHOD, rejecting)
    assert other is not first
    # ...and the registered one is wrapped again afterwards, then kept.
    again = await _intercept(interceptor, METHOD, registered)
    assert again is not other
    assert await _intercept(interceptor, METHOD, registered) is again
    # Each method has its own wrapper, even for one handler object (its metrics carry the method).
    assert await _intercept(interceptor, METHOD + "2", registered) is not again
