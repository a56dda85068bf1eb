"""The Greeter service as both examples share it: names, policy, handler table, command line.

The async and sync examples differ only in their handlers and the interceptor they install;
everything that says *what* the service is lives here.

Usage:
    args = parse_args(["--issuer", "https://idp.example.com", "--audience", "greeter"])
    config = authn_config(args)
    server.add_generic_rpc_handlers((greeter_handler(ping, say_hello, say_goodbye),))
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection

from examples.greeter import greeter_pb2 as pb
from jwt_authn import AuthnConfig, IssuerConfig, Policy, Requirement

__all__ = [
    "FAREWELL_SCOPE",
    "PING",
    "POLICY",
    "REFLECTED_SERVICES",
    "SAY_GOODBYE",
    "SAY_HELLO",
    "SERVICE",
    "authn_config",
    "greeter_handler",
    "parse_args",
]

SERVICE = "greeter.v1.GreeterService"
PING = f"/{SERVICE}/Ping"
SAY_HELLO = f"/{SERVICE}/SayHello"
SAY_GOODBYE = f"/{SERVICE}/SayGoodbye"
#: The scope a token needs to call SayGoodbye.
FAREWELL_SCOPE = "greeter.farewell"

#: What server reflection lists, so ``grpcurl list`` and ``describe`` work without the proto.
REFLECTED_SERVICES = (pb.DESCRIPTOR.services_by_name["GreeterService"].full_name, reflection.SERVICE_NAME)

#: Deny by default: SayHello needs any valid token, SayGoodbye a scope, Ping nothing (and, as
#: always unless turned off, gRPC health and reflection).
POLICY = Policy(
    public_methods=(PING,),
    requirements={SAY_GOODBYE: Requirement(scopes=frozenset({FAREWELL_SCOPE}))},
)

Behavior = Callable[[Any, Any], Any]


def greeter_handler(
    ping: Behavior, say_hello: Behavior, say_goodbye: Behavior
) -> grpc.GenericRpcHandler[Any, Any]:
    """The GreeterService method table for ``server.add_generic_rpc_handlers`` (async or sync)."""

    def unary(behavior: Behavior, request: Any, response: Any) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.unary_unary_rpc_method_handler(
            behavior, request_deserializer=request.FromString, response_serializer=response.SerializeToString
        )

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Ping": unary(ping, pb.PingRequest, pb.PingResponse),
            "SayHello": unary(say_hello, pb.SayHelloRequest, pb.SayHelloResponse),
            "SayGoodbye": unary(say_goodbye, pb.SayGoodbyeRequest, pb.SayGoodbyeResponse),
        },
    )


def parse_args(argv: Sequence[str] | None = None, *, prog: str = "greeter") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description="A Greeter gRPC service guarded by jwt_authn.")
    parser.add_argument("--issuer", required=True, help="the token issuer URL (exact iss; OIDC discovery)")
    parser.add_argument(
        "--audience", required=True, action="append", help="an accepted aud value (repeat for more)"
    )
    parser.add_argument("--listen", default="127.0.0.1:50051", help="host:port to serve on (port 0: any)")
    return parser.parse_args(argv)


def authn_config(args: argparse.Namespace) -> AuthnConfig:
    """The jwt_authn configuration: one issuer found by discovery, the Greeter's policy."""
    return AuthnConfig(
        issuers=(IssuerConfig(issuer=args.issuer, audiences=tuple(args.audience)),), policy=POLICY
    )
