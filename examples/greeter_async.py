"""The Greeter on a grpc.aio server, guarded by jwt_authn's AsyncAuthInterceptor.

Usage:
    python -m examples.greeter_async --issuer https://idp.example.com --audience greeter \
        --listen 127.0.0.1:50051
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection

from examples.greeter import greeter_pb2 as pb
from examples.greeter.service import REFLECTED_SERVICES, authn_config, greeter_handler, parse_args
from jwt_authn import AsyncAuthInterceptor, Authenticator, current_principal, recommended_server_options

Context = grpc.aio.ServicerContext[Any, Any]


async def ping(request: pb.PingRequest, context: Context) -> pb.PingResponse:
    return pb.PingResponse(message="pong")


async def say_hello(request: pb.SayHelloRequest, context: Context) -> pb.SayHelloResponse:
    caller = current_principal()  # verified by the interceptor: never parse the token again
    return pb.SayHelloResponse(message=f"Hello, {request.name or caller.subject}!", caller=caller.subject)


async def say_goodbye(request: pb.SayGoodbyeRequest, context: Context) -> pb.SayGoodbyeResponse:
    caller = current_principal()  # the policy already checked its greeter.farewell scope
    return pb.SayGoodbyeResponse(message=f"Goodbye, {request.name or caller.subject}!", caller=caller.subject)


async def serve(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv, prog="greeter_async")
    config = authn_config(args)

    authenticator = Authenticator(config)
    server = grpc.aio.server(
        interceptors=[AsyncAuthInterceptor(authenticator)], options=recommended_server_options(config)
    )
    server.add_generic_rpc_handlers((greeter_handler(ping, say_hello, say_goodbye),))
    reflection.enable_server_reflection(REFLECTED_SERVICES, server)
    port = server.add_insecure_port(args.listen)
    await authenticator.start()  # loads the issuer's keys in the background; returns at once
    await server.start()

    print(f"greeter_async listening on {args.listen.rsplit(':', 1)[0]}:{port}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(grace=1)
    await authenticator.close()


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(serve(argv))


if __name__ == "__main__":
    main()
