"""The app factory: a grpc.aio server with our handlers, health, reflection and jwt_authn.

``build_server`` binds the port (so callers learn it, and a port in use fails at once) but
does not start anything; ``start`` starts the authenticator's key loading and the server;
``stop`` drains: health NOT_SERVING first, then in-flight RPCs get the grace period, then
the authenticator closes. An open health Watch stream is an in-flight call too: it sees
NOT_SERVING at once and is cancelled when the grace period ends.

Usage:
    app = build_server(settings)           # settings.listen may be 127.0.0.1:0
    await app.start()
    print(app.port)
    await app.stop()
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from jwt_authn import AsyncAuthInterceptor, Authenticator, AuthnConfig
from jwt_authn.grpc_aio import recommended_server_options
from secureroute.settings import ListenAddress, SettingsError
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc
from service.handlers import SecureRouteServicer
from service.health import HealthReporter
from service.settings import ServiceSettings, authn_config

__all__ = ["SecureRouteServer", "build_server"]

_log = logging.getLogger(__name__)

_SERVER_OPTIONS: list[tuple[str, int]] = [
    # gRPC sets SO_REUSEPORT by default on Linux, so a second server on a busy port would
    # silently share it; we want "port in use" to be an error.
    ("grpc.so_reuseport", 0),
    # Accept the facade's keepalive pings on idle connections (the default minimum is 5 min,
    # and pinging faster gets the client a GOAWAY "too_many_pings").
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
]


@dataclass(slots=True)
class SecureRouteServer:
    """A built server and the parts its lifecycle needs."""

    server: grpc.aio.Server
    port: int
    authenticator: Authenticator
    health: HealthReporter
    grace_period_s: float

    async def start(self) -> None:
        """Start loading keys (never blocks on the issuer) and serving."""
        await self.health.start()
        self.authenticator.add_ready_callback(self.health.mark_ready)
        await self.authenticator.start()
        await self.server.start()

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain and stop: NOT_SERVING first, in-flight RPCs get ``grace_s``, then close the authenticator."""
        await self.health.enter_shutdown()
        await self.server.stop(self.grace_period_s if grace_s is None else grace_s)
        await self.authenticator.close()


def _check_bindable(listen: ListenAddress) -> None:
    """Fail with a one-line SettingsError before gRPC tries (and logs its own multi-line error)."""
    if listen.port == 0:
        return
    try:
        infos = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise SettingsError(f"listen: cannot resolve {listen.host!r}: {err.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EAFNOSUPPORT:
                return  # let gRPC decide what to do on a host without this address family
            raise SettingsError(f"listen: cannot bind {listen}: {err.strerror}") from None


def build_server(settings: ServiceSettings, config: AuthnConfig | None = None) -> SecureRouteServer:
    """Build and bind the server. Raises ``ValueError("setting: problem")`` (bad settings, busy port)."""
    config = authn_config(settings) if config is None else config
    _check_bindable(settings.listen)
    authenticator = Authenticator(config)
    server = grpc.aio.server(
        interceptors=[AsyncAuthInterceptor(authenticator)],
        options=[*recommended_server_options(config), *_SERVER_OPTIONS],
    )
    secureroute_pb2_grpc.add_SecureRouteServiceServicer_to_server(  # type: ignore[no-untyped-call]
        SecureRouteServicer(), server
    )
    health = HealthReporter()
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    # Reflection lets grpcurl list and describe us without the .proto files.
    reflection.enable_server_reflection(
        (
            secureroute_pb2.DESCRIPTOR.services_by_name["SecureRouteService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    try:
        port = server.add_insecure_port(str(settings.listen))
    except RuntimeError:
        raise SettingsError(f"listen: cannot bind {settings.listen}") from None
    return SecureRouteServer(
        server=server,
        port=port,
        authenticator=authenticator,
        health=health,
        grace_period_s=settings.grace_period,
    )
