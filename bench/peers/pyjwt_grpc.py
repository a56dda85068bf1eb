"""The Python peer: a grpc.aio server guarded by an interceptor built on PyJWT's ``PyJWKClient``.

This is what a Python user would write instead of embedding jwt_authn, following PyJWT's own
documentation ("Retrieve RSA signing keys from a JWKS endpoint"): a ``PyJWKClient`` on the issuer's
JWKS URL, ``get_signing_key_from_jwt`` then ``jwt.decode`` with the algorithm, audience and issuer,
in an interceptor in the shape of grpc's own authentication example (a rejected call gets a handler
that aborts UNAUTHENTICATED). It serves the same SecureRouteService: Health answers anyone,
SecureRoute answers the verified caller with its claims (``Struct.update``, as one would write it).
No metrics, no request ids, no verified-token cache: a bare server, the floor of our public path.

Usage:
    python -m bench.peers.pyjwt_grpc --listen 127.0.0.1:50052 --issuer http://127.0.0.1:8080 \
        --audience secureroute [--jwks-url http://127.0.0.1:8080/jwks]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import jwt
from google.protobuf import struct_pb2

from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

__all__ = ["main"]

_PUBLIC = frozenset({"/secureroute.v1.SecureRouteService/Health"})
_claims: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("claims")


class JwtInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, jwks_url: str, issuer: str, audience: str) -> None:
        self._jwks = jwt.PyJWKClient(jwks_url)
        self._issuer, self._audience = issuer, audience

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        if details.method in _PUBLIC:
            return await continuation(details)
        metadata = dict(details.invocation_metadata or ())
        header = str(metadata.get("authorization", ""))
        try:
            token = header.removeprefix("Bearer ")
            signing_key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=["RS256", "ES256"],
                audience=self._audience,
                issuer=self._issuer,
            )
        except jwt.PyJWTError:
            return grpc.unary_unary_rpc_method_handler(_deny)
        _claims.set(claims)
        return await continuation(details)


async def _deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid token")


class Servicer(secureroute_pb2_grpc.SecureRouteServiceServicer):
    async def Health(self, request: Any, context: Any) -> secureroute_pb2.HealthResponse:
        return secureroute_pb2.HealthResponse(message="Healthy")

    async def SecureRoute(self, request: Any, context: Any) -> secureroute_pb2.SecureRouteResponse:
        claims = _claims.get()
        struct = struct_pb2.Struct()
        struct.update(claims)
        return secureroute_pb2.SecureRouteResponse(
            message="Super secret stuff", subject=claims["sub"], claims=struct
        )


async def _serve(args: argparse.Namespace) -> None:
    jwks_url = args.jwks_url or f"{args.issuer.rstrip('/')}/jwks"
    server = grpc.aio.server(interceptors=[JwtInterceptor(jwks_url, args.issuer, args.audience)])
    secureroute_pb2_grpc.add_SecureRouteServiceServicer_to_server(Servicer(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port(args.listen)
    await server.start()
    # The bound port (``--listen`` may say 0), in the line the programs print: the bench reads it.
    print(f"listening on {args.listen.rpartition(':')[0]}:{port} (grpc)", flush=True)
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.peers.pyjwt_grpc", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--listen", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--jwks-url")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
