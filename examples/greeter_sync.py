"""The Greeter on a threaded grpc.server, guarded by jwt_authn's SyncAuthInterceptor.

Usage:
    python -m examples.greeter_sync --issuer https://idp.example.com --audience greeter \
        --listen 127.0.0.1:50051
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_reflection.v1alpha import reflection

from examples.greeter import greeter_pb2 as pb
from examples.greeter.service import REFLECTED_SERVICES, authn_config, greeter_handler, parse_args
from jwt_authn import SyncAuthenticator, SyncAuthInterceptor, current_principal, recommended_server_options


def ping(request: pb.PingRequest, context: grpc.ServicerContext) -> pb.PingResponse:
    return pb.PingResponse(message="pong")


def say_hello(request: pb.SayHelloRequest, context: grpc.ServicerContext) -> pb.SayHelloResponse:
    caller = current_principal()  # verified by the interceptor: never parse the token again
    return pb.SayHelloResponse(message=f"Hello, {request.name or caller.subject}!", caller=caller.subject)


def say_goodbye(request: pb.SayGoodbyeRequest, context: grpc.ServicerContext) -> pb.SayGoodbyeResponse:
    caller = current_principal()  # the policy already checked its greeter.farewell scope
    return pb.SayGoodbyeResponse(message=f"Goodbye, {request.name or caller.subject}!", caller=caller.subject)


def serve(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv, prog="greeter_sync")
    config = authn_config(args)

    authenticator = SyncAuthenticator(config)  # its own event-loop thread; starts loading keys
    server = grpc.server(
        ThreadPoolExecutor(max_workers=8),
        interceptors=[SyncAuthInterceptor(authenticator)],
        options=recommended_server_options(config),
    )
    server.add_generic_rpc_handlers((greeter_handler(ping, say_hello, say_goodbye),))
    reflection.enable_server_reflection(REFLECTED_SERVICES, server)
    port = server.add_insecure_port(args.listen)
    server.start()

    print(f"greeter_sync listening on {args.listen.rsplit(':', 1)[0]}:{port}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()
    authenticator.close()


def main(argv: Sequence[str] | None = None) -> None:
    serve(argv)


if __name__ == "__main__":
    main()
