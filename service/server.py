"""The app factory: a grpc.aio server with our handlers, health, reflection, metrics and jwt_authn.

``build_server`` binds the port (so callers learn it, and a port in use fails at once) but
does not start anything; ``start`` starts the authenticator's key loading, the server and the
metrics endpoint; ``stop`` drains: health NOT_SERVING first, then the server keeps serving for
the drain delay, then in-flight RPCs get the grace period, then the authenticator closes. An
open health Watch stream is an in-flight call too: it sees NOT_SERVING at once and is
cancelled when the grace period ends.

With ``listen_unix`` the server also binds ``unix:PATH`` (same credentials as the TCP port); the
path is checked before the bind (``service.unix_socket``) and its socket file removed at stop.

Limits (settings): ``max_concurrent_rpcs`` across the server (more are RESOURCE_EXHAUSTED), of
which calls without a token take at most ``max_anonymous_rpcs`` + ``max_anonymous_streams``,
and one client at most ``max_anonymous_per_connection`` / ``max_anonymous_per_address``
(``service.admission``), ``max_concurrent_streams`` per connection, ``max_connection_idle_s`` and
``max_connection_age_s`` (+ grace) before a GOAWAY.

Usage:
    app = build_server(settings)           # settings.grpc.listen may be 127.0.0.1:0
    await app.start()
    print(app.port, app.metrics_port)
    await app.stop()
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from jwt_authn import AsyncAuthInterceptor, Authenticator, AuthnConfig
from jwt_authn.grpc_aio import recommended_server_options
from runtime.listen import check_bindable
from runtime.metrics_server import MetricsServer
from runtime.settings import SettingsError
from runtime.tls import ServerTLS, grpc_server_credentials
from secureroute.v1 import secureroute_pb2, secureroute_pb2_grpc
from service.admission import AnonymousAdmission
from service.call_pipeline import CallPipeline
from service.guard_spans import traced_observer
from service.handlers import SecureRouteServicer
from service.health import HealthReporter
from service.metrics import ServiceMetrics
from service.rpc_spans import server_interceptors
from service.settings import ServiceSettings, authn_config
from service.unix_socket import BoundSocketFile, check_unix_bindable

if TYPE_CHECKING:  # imported when used: the redis package imports OpenTelemetry when it is installed
    from jwt_authn.replay_redis import RedisReplayStore

__all__ = ["SecureRouteServer", "build_server"]

_log = logging.getLogger(__name__)

_SERVER_OPTIONS: list[tuple[str, int]] = [
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
    metrics: ServiceMetrics
    admission: AnonymousAdmission
    grace_period_s: float
    drain_delay_s: float = 0.0
    metrics_server: MetricsServer | None = None
    #: The socket file of ``listen_unix`` (None when it is unset).
    unix_socket: BoundSocketFile | None = None
    #: The Redis replay store of ``dpop_replay_redis_url`` (ours to close), or None.
    redis_store: RedisReplayStore | None = None

    @property
    def metrics_port(self) -> int | None:
        """The bound metrics port once started (None when metrics are off)."""
        return None if self.metrics_server is None else self.metrics_server.port

    async def start(self) -> None:
        """Start loading keys (never blocks on the issuer), serving, and the metrics endpoint."""
        await self.health.start()
        self.authenticator.add_ready_callback(self.health.mark_ready)
        await self.authenticator.start()
        if self.redis_store is not None:
            self.health.watch_replay_store(self.redis_store)
        await self.server.start()
        if self.metrics_server is not None:
            try:
                await self.metrics_server.start()
            except SettingsError:
                await self.stop(0, drain_delay_s=0)
                raise

    async def stop(self, grace_s: float | None = None, *, drain_delay_s: float | None = None) -> None:
        """Drain and stop: NOT_SERVING first, keep serving ``drain_delay_s``, then in-flight RPCs
        get ``grace_s``, then close the rest. Both default to the settings."""
        await self.drain(drain_delay_s)
        await self.server.stop(self.grace_period_s if grace_s is None else grace_s)
        await self.close()

    async def drain(self, drain_delay_s: float | None = None) -> None:
        """NOT_SERVING, then keep serving ``drain_delay_s`` (default: the settings') before stopping."""
        await self.health.enter_shutdown()
        delay_s = self.drain_delay_s if drain_delay_s is None else drain_delay_s
        if delay_s > 0:
            # server.stop() answers CANCELLED to every call it has received but not yet handed to
            # a handler (grpc/grpc#41785): under load, calls already sent would fail. Serving a
            # little longer lets them through while health watchers and balancers move away.
            _log.info("health NOT_SERVING; still serving for %.1f s before stopping", delay_s)
            await asyncio.sleep(delay_s)

    async def close(self) -> None:
        """After the server stopped: the socket path, the guard, the replay store, the metrics."""
        if self.unix_socket is not None:
            self.unix_socket.remove()  # so a restart binds a fresh path
        await self.authenticator.close()
        if self.redis_store is not None:
            await self.redis_store.close()  # a store we passed in is ours to close
        if self.metrics_server is not None:
            await self.metrics_server.stop()


def _replay_store(redis_url: str | None) -> RedisReplayStore | None:
    """The Redis store replicas share for DPoP replay protection, or None (each process's own)."""
    if redis_url is None:
        return None
    from jwt_authn.replay_redis import RedisReplayStore  # noqa: PLC0415  # see the TYPE_CHECKING import

    try:
        return RedisReplayStore.from_url(redis_url)
    except RuntimeError as error:  # the redis package is missing: the guard's optional extra
        raise SettingsError(f"dpop_replay_redis_url: {error}") from None


def _limit_options(settings: ServiceSettings) -> list[tuple[str, int]]:
    options = [("grpc.max_concurrent_streams", settings.grpc.max_concurrent_streams)]
    if settings.grpc.max_connection_idle_s > 0:
        options.append(("grpc.max_connection_idle_ms", round(settings.grpc.max_connection_idle_s * 1000)))
    if settings.grpc.max_connection_age_s > 0:
        options.append(("grpc.max_connection_age_ms", round(settings.grpc.max_connection_age_s * 1000)))
        options.append(
            ("grpc.max_connection_age_grace_ms", round(settings.grpc.max_connection_age_grace_s * 1000))
        )
    return options


def _server_tls(settings: ServiceSettings) -> ServerTLS | None:
    if settings.grpc.tls_cert is None or settings.grpc.tls_key is None:
        return None
    return ServerTLS(settings.grpc.tls_cert, settings.grpc.tls_key, settings.grpc.tls_client_ca)


def _add_port(
    server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None, setting: str
) -> int:
    """Bind ``address`` with the server's one set of credentials (plaintext when None)."""
    try:
        if credentials is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, credentials)
    except RuntimeError:
        raise SettingsError(f"{setting}: cannot bind {address}") from None


def build_server(
    settings: ServiceSettings, config: AuthnConfig | None = None, *, reuse_port: bool = False
) -> SecureRouteServer:
    """Build and bind the server. Raises ``ValueError("setting: problem")`` (bad settings, busy port).

    ``reuse_port`` lets several worker processes share the port (SO_REUSEPORT); otherwise a
    port in use is an error (gRPC would silently share it, as it sets SO_REUSEPORT by default).
    """
    config = authn_config(settings) if config is None else config
    tls = _server_tls(settings)
    credentials = grpc_server_credentials(tls) if tls is not None else None
    if not reuse_port:
        check_bindable(settings.grpc.listen, "listen")
    if settings.metrics_listen is not None:
        check_bindable(settings.metrics_listen, "metrics_listen")
    if settings.grpc.listen_unix is not None:
        check_unix_bindable(settings.grpc.listen_unix, "listen_unix")
    metrics = ServiceMetrics()
    redis_store = _replay_store(settings.dpop_replay_redis_url)
    authenticator = Authenticator(config, observer=traced_observer(metrics), replay_store=redis_store)
    metrics.watch(authenticator)
    admission = AnonymousAdmission(
        max_unary=settings.grpc.max_anonymous_rpcs,
        max_streams=settings.grpc.max_anonymous_streams,
        max_per_connection=settings.grpc.max_anonymous_per_connection,
        max_per_address=settings.grpc.max_anonymous_per_address,
        message_timeout_s=settings.grpc.request_message_timeout_s,
    )
    # One pass per call: request id, guard, admission and metrics (service.call_pipeline). Tracing
    # (when on) before it: the guard's verdict and key fetches belong to the RPC's span.
    interceptor = CallPipeline(metrics, AsyncAuthInterceptor(authenticator), admission, authenticator)
    server = grpc.aio.server(
        interceptors=[*server_interceptors(), interceptor],
        options=[
            *recommended_server_options(config),
            *_SERVER_OPTIONS,
            *_limit_options(settings),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
        # Calls past this are answered RESOURCE_EXHAUSTED before any interceptor runs; admission
        # keeps anonymous calls to a share of it.
        maximum_concurrent_rpcs=settings.grpc.max_concurrent_rpcs,
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
    port = _add_port(server, str(settings.grpc.listen), credentials, "listen")
    unix_socket = None
    if settings.grpc.listen_unix is not None:
        _add_port(server, f"unix:{settings.grpc.listen_unix}", credentials, "listen_unix")
        unix_socket = BoundSocketFile.of(settings.grpc.listen_unix)
    metrics_server = (
        None
        if settings.metrics_listen is None
        else MetricsServer(settings.metrics_listen, metrics.exposition, probes=health.probes())
    )
    return SecureRouteServer(
        server=server,
        port=port,
        authenticator=authenticator,
        health=health,
        metrics=metrics,
        admission=admission,
        grace_period_s=settings.grace_period_s,
        drain_delay_s=settings.drain_delay_s,
        metrics_server=metrics_server,
        unix_socket=unix_socket,
        redis_store=redis_store,
    )
