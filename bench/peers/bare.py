"""The ceilings: a bare aiohttp handler and a bare grpc.aio handler, nothing else in the path.

``http`` serves ``/health`` ("Healthy") and ``/secure-route`` ("Super secret stuff") from plain
aiohttp handlers: no middleware, no authentication, no access log. ``grpc`` serves the same
SecureRouteService from a grpc.aio server without interceptors: Health answers "Healthy",
SecureRoute a fixed reply (the token it is sent is never read). Both run on the event loop our
programs serve on (uvloop), so what they reach is what our paths could reach on this machine: each
goal's reach, measured in the same run (docs/benchmarks.md).

Usage:
    python -m bench.peers.bare http --listen 127.0.0.1:3001
    python -m bench.peers.bare grpc --listen 127.0.0.1:50053
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc
import uvloop
from aiohttp import web

from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

__all__ = ["main"]

_HEALTHY = secureroute_pb2.HealthResponse(message="Healthy")
_SECRET = secureroute_pb2.SecureRouteResponse(message="Super secret stuff", subject="anyone")


class Servicer(secureroute_pb2_grpc.SecureRouteServiceServicer):
    async def Health(self, request: Any, context: Any) -> secureroute_pb2.HealthResponse:
        return _HEALTHY

    async def SecureRoute(self, request: Any, context: Any) -> secureroute_pb2.SecureRouteResponse:
        return _SECRET


def _say_listening(listen: str, port: int, kind: str) -> None:
    """The bound port (``--listen`` may say 0), in the line the programs print: the bench reads it."""
    print(f"listening on {listen.rpartition(':')[0]}:{port} ({kind})", flush=True)


async def _serve_grpc(listen: str) -> None:
    server = grpc.aio.server()
    secureroute_pb2_grpc.add_SecureRouteServiceServicer_to_server(Servicer(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port(listen)
    await server.start()
    _say_listening(listen, port, "grpc")
    await server.wait_for_termination()


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="Healthy")


async def _secure_route(request: web.Request) -> web.Response:
    return web.Response(text="Super secret stuff")


async def _serve_http(listen: str) -> None:
    app = web.Application()
    app.router.add_get("/health", _health)
    app.router.add_get("/secure-route", _secure_route)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = listen.rpartition(":")
    await web.TCPSite(runner, host, int(port), backlog=511).start()
    _say_listening(listen, runner.addresses[0][1], "http")
    await asyncio.Event().wait()  # until terminated


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.bare", description=__doc__.split("\n")[0])
    parser.add_argument("transport", choices=("http", "grpc"))
    parser.add_argument("--listen", required=True)
    args = parser.parse_args()
    serve = _serve_http if args.transport == "http" else _serve_grpc
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.listen))


if __name__ == "__main__":
    main()
