"""The service's one interceptor: one pass per call for the request id, the guard, anonymous
admission and the call's metric sample.

Per call it sets the request id (from ``x-request-id`` metadata; before the guard, so a rejection's
log line carries it), finds the handler, asks jwt_authn's guard once
(``AsyncAuthInterceptor.guard``, public API), and returns the handler to run:

- a public method's handler, admitted and observed (``service.admission``), built once per method;
- an authenticated call's handler, observed, built once per method;
- a refusal (the guard's own handler), observed, per call.

The status code is read from the context after the handler (``context.abort`` records it), and
the time is measured around the handler, rejected calls included. gRPC runs the interceptors and
the handler in the call's own task, so the ContextVars (request id, principal) need no reset.
Tracing, when on, is a separate interceptor before this one (``runtime.tracing``).

Usage:
    interceptor = CallPipeline(metrics, AsyncAuthInterceptor(authenticator), admission)
    server = grpc.aio.server(interceptors=[*server_interceptors(), interceptor])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import grpc

from jwt_authn import AsyncAuthInterceptor, Authenticator
from jwt_authn.handler_wrapping import Handler
from runtime.request_id import NO_REQUEST_ID, REQUEST_ID_METADATA, is_safe_request_id, request_id_var
from service.admission import AnonymousAdmission
from service.metrics import ServiceMetrics
from service.rpc_outcome import timed

__all__ = ["CallPipeline"]


def _request_id(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_METADATA:
            return value if is_safe_request_id(value) else NO_REQUEST_ID
    return NO_REQUEST_ID


#: Most methods whose wrapped handler is kept (a server has a fixed set; the bound is for a
#: catch-all generic handler that answers any name).
_MAX_WRAPPED_METHODS = 1024


class CallPipeline(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Request id, guard, admission and metrics in one interceptor; see the module docstring."""

    def __init__(
        self,
        metrics: ServiceMetrics,
        guard: AsyncAuthInterceptor,
        admission: AnonymousAdmission,
        authenticator: Authenticator,
    ) -> None:
        self._metrics = metrics
        self._guard = guard
        self._admission = admission
        self._is_public = authenticator.is_public
        # method -> (the handler, the copy we run). A registered method's handler is the same
        # object on every call, so its copy is too; a different one (a catch-all's) replaces it.
        self._built: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(  # type: ignore[override]  # None means UNIMPLEMENTED
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        request_id_var.set(_request_id(handler_call_details.invocation_metadata))
        handler = await continuation(handler_call_details)
        if handler is None:
            self._metrics.count_unknown_method()
            return None
        guarded = await self._guard.guard(handler, handler_call_details, continuation)
        method = handler_call_details.method
        if guarded is not handler:  # the guard's refusal (or a plain-def handler with its principal)
            return self._observed(method, guarded)
        kept = self._built.get(method)
        if kept is not None and kept[0] is handler:
            return kept[1]
        if self._is_public(method):
            built = self._admission.admitted(handler, partial(self._metrics.observe_rpc, method))
        else:
            built = self._observed(method, handler)
        if kept is not None or len(self._built) < _MAX_WRAPPED_METHODS:
            self._built[method] = (handler, built)
        return built

    def _observed(self, method: str, handler: Handler) -> Handler:
        return timed(handler, partial(self._metrics.observe_rpc, method))
