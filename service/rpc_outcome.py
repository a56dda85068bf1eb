"""How a grpc.aio handler ended: its status code, told to whoever watches the call's end.

The service's observer (metrics) and the tracing interceptor both wrap a handler to learn, when
it returns or raises, which status the caller got; ``ending_wrappers`` is that wrapping, once.
The code is read from the context (``context.abort`` and ``set_code`` record it); an exception
the handler did not map is UNKNOWN, as gRPC answers it, and a cancellation is CANCELLED.

The wrappers go around a handler's behavior through the guard's ``wrap_behavior``, which keeps
the handler's (de)serializers and streaming flags.

Usage:
    unary, streaming = ending_wrappers(lambda: (lambda code: print(code)))
    handler = wrap_behavior(handler, unary=unary, streaming=streaming)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from time import perf_counter
from typing import Any

import grpc

from jwt_authn.handler_wrapping import Behavior, Handler, wrap_behavior

__all__ = ["Ended", "Observe", "ending_wrappers", "failure_code", "final_code", "timed"]

#: Told the call's status code once, when its handler ends.
Ended = Callable[[grpc.StatusCode], None]
#: Told a call's status code and its duration in seconds (the service's metrics).
Observe = Callable[[grpc.StatusCode, float], None]
_Wrap = Callable[[Behavior], Behavior]


def failure_code(context: grpc.aio.ServicerContext[Any, Any], error: BaseException) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode) and code is not grpc.StatusCode.OK:
        return code  # context.abort() and set_code() record it
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN  # what gRPC answers for an unhandled exception


def final_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK


def ending_wrappers(start: Callable[[], Ended]) -> tuple[_Wrap, _Wrap]:
    """Wrappers (unary, streaming response) for ``wrap_behavior``: ``start()`` runs as the handler
    starts, and what it returns is told the status code when the handler ends."""

    def unary(behavior: Behavior) -> Behavior:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            ended = start()
            try:
                response = await behavior(request, context)
            except BaseException as error:
                ended(failure_code(context, error))
                raise
            ended(final_code(context))
            return response

        return call

    def streaming(behavior: Behavior) -> Behavior:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            ended = start()
            try:
                result = behavior(request, context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                else:  # a handler that writes with context.write() and returns None
                    await result
            except BaseException as error:
                ended(failure_code(context, error))
                raise
            ended(final_code(context))

        return call

    return unary, streaming


def timed(handler: Handler, observe: Observe) -> Handler:
    """``handler`` telling ``observe`` each call's status code and duration (from its start)."""

    def start() -> Ended:
        started = perf_counter()
        return lambda code: observe(code, perf_counter() - started)

    unary, streaming = ending_wrappers(start)
    return wrap_behavior(handler, unary=unary, streaming=streaming)
