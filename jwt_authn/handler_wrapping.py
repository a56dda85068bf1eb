"""Rebuild gRPC method handlers: rejecting handlers for both interceptors, and the sync
interceptor's principal-setting wrapper (the aio one sets it in the call's own task instead).

Usage:
    wrapped = wrap_behavior(handler, unary=wrap_unary, streaming=wrap_streaming)
    rejecting = same_shape_handler(handler, abort_behavior)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, cast

import grpc

__all__ = ["Handler", "same_shape_handler", "wrap_behavior"]

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


def same_shape_handler(handler: Handler, behavior: Behavior) -> Handler:
    """A handler of ``handler``'s streaming shape running ``behavior``, with no request
    deserializer: the message of a rejected caller is never parsed."""
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(behavior)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(behavior)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(behavior)
    return grpc.unary_unary_rpc_method_handler(behavior)
