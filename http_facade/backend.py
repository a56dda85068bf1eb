"""The backend seam: what the routes call. Remote, one long-lived gRPC channel to the service,
opened and closed with the app (the split deployment); or local, the service's domain code in
this process behind jwt_authn's own aiohttp middleware on the service's ``Authenticator`` (the
one program: one guard, one key set, one Policy for both transports; ``http_facade.routes``).

The channel reconnects by itself; its backoff is capped at 2 s so the facade recovers
quickly when the service comes back, and calls never wait for a connection
(``wait_for_ready=False``): a down backend answers UNAVAILABLE at once (HTTP 503), and so does
one whose TLS handshake fails (unknown CA, expired certificate, client certificate refused).

Usage:
    app.cleanup_ctx.append(backend_context("localhost:50051", timeout_s=5.0))
    create_app(settings, LocalBackend(calls, authenticator))      # the one program
    backend = request.app[BACKEND_KEY]
    reply = await backend.stub.Health(HealthRequest(), timeout=backend.timeout_s, wait_for_ready=False)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from aiohttp import web

from http_facade.request_spans import channel_interceptors
from jwt_authn import Authenticator, Principal
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc

__all__ = [
    "BACKEND_KEY",
    "CHANNEL_OPTIONS",
    "Backend",
    "BackendContext",
    "LocalBackend",
    "ServiceCalls",
    "backend_context",
]

CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.primary_user_agent", "secureroute-facade"),
    # Ping idle connections so a dead backend is noticed before a user request needs it
    # (the service allows pings every 10 s).
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # No bandwidth-delay probing: our messages are tiny, and under load bursts the probe pings
    # on top of keepalive made the service answer GOAWAY "too_many_pings" (seen in the bench).
    ("grpc.http2.bdp_probe", 0),
    # Reconnect quickly after an outage: gRPC's defaults back off from 1 s up to 120 s.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    # C-core also uses this as the floor of each connect attempt's timeout (default 20 s).
    ("grpc.min_reconnect_backoff_ms", 1_000),
]


@dataclass(frozen=True, slots=True)
class Backend:
    #: secureroute.v1.SecureRouteService stub, created once per app (the generated stub is untyped).
    stub: Any
    timeout_s: float


BACKEND_KEY = web.AppKey("backend", Backend)

#: A ``cleanup_ctx`` entry that sets ``app[BACKEND_KEY]``.
BackendContext = Callable[[web.Application], AsyncIterator[None]]


class ServiceCalls(Protocol):
    """SecureRouteService's domain code, called in this process: its serving status (Health) and
    its reply for a verified principal (SecureRoute; ``secure_message`` when only the reply's
    message is wanted). No channel, no servicer context."""

    async def health(self) -> secureroute_pb2.HealthResponse: ...

    async def secure_route(self, principal: Principal) -> secureroute_pb2.SecureRouteResponse: ...

    async def secure_message(self, principal: Principal) -> str: ...


@dataclass(frozen=True, slots=True)
class LocalBackend:
    """The one program's backend: ``calls`` guarded by ``authenticator`` (the gRPC server's own)."""

    calls: ServiceCalls
    authenticator: Authenticator


def backend_context(
    target: str,
    timeout_s: float,
    credentials: grpc.ChannelCredentials | None = None,
    server_name: str | None = None,
) -> BackendContext:
    """A ``cleanup_ctx`` entry that opens the channel at startup and closes it at cleanup.

    With ``credentials`` the channel speaks TLS; ``server_name`` is then the name the
    backend's certificate must carry, when it differs from the target's host.
    """
    options = list(CHANNEL_OPTIONS)
    if server_name is not None:
        options.append(("grpc.ssl_target_name_override", server_name))

    async def _backend(app: web.Application) -> AsyncIterator[None]:
        interceptors = channel_interceptors()  # tracing: None when off
        if credentials is None:
            channel = grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
        else:
            channel = grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)
        stub = secureroute_pb2_grpc.SecureRouteServiceStub(channel)  # type: ignore[no-untyped-call]
        app[BACKEND_KEY] = Backend(stub=stub, timeout_s=timeout_s)
        try:
            yield
        finally:
            await channel.close(grace=None)

    return _backend
