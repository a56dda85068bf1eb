"""Rebuild gRPC method handlers: rejecting handlers for both interceptors, and handlers whose
plain ``def`` behavior sees the principal on the worker thread it runs on.

Usage:
    wrapped = wrap_behavior(handler, unary=wrap_unary, streaming=wrap_streaming)
    rejecting = rejecting_handler(handler, abort_behavior)
    handler = with_principal(handler, principal)  # only plain-``def`` behaviors are rebuilt
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias, cast

import grpc

from jwt_authn.principal import Principal, principal_var

__all__ = [
    "Behavior",
    "Handler",
    "rejecting_handler",
    "streaming_with",
    "unary_with",
    "with_principal",
    "wrap_behavior",
]

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behavior: TypeAlias = Callable[..., Any]

_UNARY_RESPONSE = ("unary_unary", "stream_unary")
_STREAMING_RESPONSE = ("unary_stream", "stream_stream")


def wrap_behavior(
    handler: Handler, *, unary: Callable[[Behavior], Behavior], streaming: Callable[[Behavior], Behavior]
) -> Handler:
    """``handler`` with its behavior wrapped by ``unary`` or ``streaming`` (by response shape)."""
    for name in (*_UNARY_RESPONSE, *_STREAMING_RESPONSE):
        behavior = getattr(handler, name)
        if behavior is not None:
            wrap = unary if name in _UNARY_RESPONSE else streaming
            # grpc's handlers are NamedTuples; _replace keeps the (de)serializers and flags.
            return cast(Handler, handler._replace(**{name: wrap(behavior)}))  # type: ignore[attr-defined]
    return handler


def _behavior(handler: Handler) -> Behavior | None:
    for name in (*_UNARY_RESPONSE, *_STREAMING_RESPONSE):
        behavior = getattr(handler, name)
        if behavior is not None:
            return cast(Behavior, behavior)
    return None


def with_principal(handler: Handler, principal: Principal) -> Handler:
    """``handler`` with a plain-``def`` behavior rebuilt to set ``principal`` in the thread that
    runs it: gRPC's worker threads (threaded servers, and grpc.aio's ``migration_thread_pool``)
    do not carry the interceptor's context. An ``async`` behavior is returned as it is: it runs
    in the call's own task, where the aio interceptor sets the principal itself."""
    behavior = _behavior(handler)
    if behavior is None or inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior):
        return handler
    return wrap_behavior(
        handler,
        unary=lambda behavior: unary_with(principal, behavior),
        streaming=lambda behavior: streaming_with(principal, behavior),
    )


def unary_with(principal: Principal, behavior: Behavior) -> Behavior:
    def call(request: Any, context: Any) -> Any:
        reset = principal_var.set(principal)
        try:
            return behavior(request, context)
        finally:
            principal_var.reset(reset)

    return call


def streaming_with(principal: Principal, behavior: Behavior) -> Behavior:
    def call(request: Any, context: Any) -> Iterator[Any]:
        # Set around each step, not the whole generator: a thread pool may resume it on another
        # worker, and no worker may keep the principal after its step.
        responses = iter(behavior(request, context))
        while True:
            reset = principal_var.set(principal)
            try:
                response = next(responses)
            except StopIteration:
                return
            finally:
                principal_var.reset(reset)
            yield response

    return call


def rejecting_handler(handler: Handler, behavior: Behavior) -> Handler:
    """A handler of ``handler``'s response shape running ``behavior`` (which aborts), always
    request-streaming and with no request deserializer: gRPC reads a unary request before it runs
    the handler, so a unary-shaped rejection would wait as long as the caller withholds its
    message (holding a call slot meanwhile); as a stream it is answered on the call's headers
    alone, and the message of a rejected caller is never read or parsed."""
    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(behavior)
    return grpc.stream_unary_rpc_method_handler(behavior)
