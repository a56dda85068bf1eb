"""The gRPC service's settings: its listener group, the bearer-token and process groups, its own knobs.

Usage:
    settings = load_service_settings(["--issuer", "https://idp.example.com/", "--audience", "secureroute"])
    config = authn_config(settings)  # raises ValueError("audiences: ...") on a bad combination
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar, Self

from pydantic import AfterValidator, Field, model_validator

from jwt_authn.config import AuthnConfig
from runtime.settings import (
    Count,
    ExistingFile,
    Listen,
    ListenAddress,
    OptionalListen,
    PositiveSeconds,
    ProgramSettings,
    Seconds,
    Text,
    load,
)
from runtime.shared_settings import ProcessSettings, ServerTLSSettings, WorkerSettings
from service import guard_settings
from service.guard_settings import AuthnSettings
from service.unix_socket import parse_unix_socket_path

__all__ = ["HEALTH_METHOD", "PROG", "GrpcServer", "ServiceSettings", "authn_config", "load_service_settings"]

PROG = "secureroute-service"
#: Our own Health RPC answers load balancers and the facade's /health without credentials.
HEALTH_METHOD = "/secureroute.v1.SecureRouteService/Health"


#: Calls the load tests keep in flight (tests/load): the call cap is a multiple of it.
_LOAD_TEST_CALLS = 200
_MAX_CONCURRENT_RPCS = 5 * _LOAD_TEST_CALLS
#: Room for calls without a token, each kind: a tenth of the call cap.
_ANONYMOUS_ROOM = _MAX_CONCURRENT_RPCS // 10


class GrpcServer(ServerTLSSettings):
    """The gRPC listener (variables ``SECUREROUTE_GRPC_*``) and its limits."""

    # All interfaces, gRPC's conventional port.
    listen: Listen = Field(
        ListenAddress("::", 50051),
        description="address to serve gRPC on, host:port ([::]:port for IPv6, port 0 picks a free port)",
    )
    # Off: only co-located clients (a facade on the same host) have a use for it.
    listen_unix: Annotated[Text, AfterValidator(parse_unix_socket_path)] | None = Field(
        None,
        description="also serve gRPC on this Unix socket (absolute path, its directory must exist), with "
        "the same TLS as listen; the socket gets the process umask, so the directory's permissions "
        "decide who may connect; needs workers = 1",
    )
    tls_client_ca: ExistingFile | None = Field(
        None, description="PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)"
    )
    # It only stops a pile-up (each waiting call costs memory), never a busy but healthy service.
    max_concurrent_rpcs: Count = Field(
        _MAX_CONCURRENT_RPCS,
        description="calls served at once across all connections, anonymous ones included; "
        "more are answered RESOURCE_EXHAUSTED (HTTP 429 at the facade)",
    )
    # Probes and /health answer in a millisecond: far above any honest need, and an anonymous
    # flood (unary and streams together) leaves the rest of the call cap to token holders.
    max_anonymous_rpcs: Count = Field(
        _ANONYMOUS_ROOM,
        description="unary calls without a token at once (health Check, Health); more are answered "
        "RESOURCE_EXHAUSTED at once; health Watch streams cannot take this room",
    )
    # Health Watch (and reflection) streams live long and anyone may open them: apart from the
    # unary room, so watchers cannot starve probes.
    max_anonymous_streams: Count = Field(
        _ANONYMOUS_ROOM,
        description="streaming calls without a token at once (health Watch, reflection); more are "
        "answered RESOURCE_EXHAUSTED at once",
    )
    # One client (one connection, or every connection from one address) may hold at most about a
    # third of the unary pool: a silent-call flood from it leaves the rest to other clients and
    # probes, while a split facade (all its /health calls on one connection) keeps room for the 32
    # connections the benchmark's load opens. The pools still bound many clients together.
    max_anonymous_per_connection: Count = Field(
        32,
        description="calls without a token (unary and streaming) at once on one connection; more are "
        "answered RESOURCE_EXHAUSTED at once ('too many anonymous calls from this client')",
    )
    max_anonymous_per_address: Count = Field(
        32,
        description="calls without a token (unary and streaming) at once from one peer address, all its "
        "connections together; more are answered RESOURCE_EXHAUSTED at once (HTTP 429 at the facade)",
    )
    # Kubernetes' default probe timeout: clients send the message with the call's headers, so
    # only a caller that withholds it waits; it then holds an anonymous slot this long at most.
    request_message_timeout_s: PositiveSeconds = Field(
        1.0,
        description="how long a call without a token may take to send its request message, seconds; "
        "slower ones are answered DEADLINE_EXCEEDED (calls with an invalid token are refused "
        "without waiting for it)",
    )
    # About half the call cap: one connection cannot take every slot, yet a facade
    # process (all its calls on one connection) has room. Not nginx's 128: grpc-core refuses a few
    # streams (REFUSED_STREAM, seen as UNAVAILABLE) whenever a connection runs at the limit,
    # as its overload protection counts streams still finishing; see the README.
    max_concurrent_streams: int = Field(
        1 << (_MAX_CONCURRENT_RPCS // 2 - 1).bit_length(),  # the power of two at or above half the cap
        ge=1,
        le=1_000_000,
        description="calls at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS); a client's "
        "further calls wait on its side, and a few may fail UNAVAILABLE while it runs at the limit",
    )
    # Long enough that a steady client never reconnects, short enough that abandoned connections do
    # not pile up; gRPC clients reconnect by themselves. A day at most: gRPC takes milliseconds as a
    # 32-bit int (at most ~24.8 days).
    max_connection_idle_s: Seconds = Field(
        300.0,
        le=86_400,
        description="close a connection without calls for this long (GOAWAY), seconds; 0 keeps it open",
    )
    # Half an hour: long-lived connections get rebalanced onto new pods after a scale-up,
    # and a health Watch cannot stay open for ever (it ends at age + grace).
    max_connection_age_s: Seconds = Field(
        1800.0,
        le=86_400,
        description="send a connection a GOAWAY after this long, seconds (clients reconnect by "
        "themselves); 0 keeps it open",
    )
    # Calls take at most the facade's 5 s deadline; 30 s leaves room for slower clients.
    max_connection_age_grace_s: Seconds = Field(
        30.0,
        le=86_400,
        description="after that GOAWAY, how long calls still open (health Watch streams) may run, seconds",
    )

    @model_validator(mode="after")
    def _mutual_tls_needs_tls(self) -> Self:
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_cert: required when tls_client_ca is set (mutual TLS needs TLS)")
        return self

    @model_validator(mode="after")
    def _authenticated_calls_keep_room(self) -> Self:
        if self.max_anonymous_rpcs + self.max_anonymous_streams >= self.max_concurrent_rpcs:
            # Authenticated calls must keep room that anonymous ones cannot take.
            raise ValueError(
                "max_anonymous_rpcs: with max_anonymous_streams it must stay below max_concurrent_rpcs "
                f"({self.max_anonymous_rpcs} + {self.max_anonymous_streams} >= {self.max_concurrent_rpcs})"
            )
        return self


def _redis_url(value: str) -> str:
    if value.split("://", 1)[0] not in ("redis", "rediss", "unix"):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return value


class ServiceRuntime(ProcessSettings):
    """The service's process: metrics listener and drain, beside workers, grace and logs."""

    # Loopback: process facts and traffic counts are for the operator, never the public side
    # (a pod address such as 0.0.0.0:9464 lets Prometheus scrape); 9464 is the port
    # OpenTelemetry's Prometheus exporter made common.
    metrics_listen: OptionalListen = Field(
        ListenAddress("127.0.0.1", 9464),
        description="the admin listener: Prometheus /metrics and the probes /health and /ready over plain "
        "HTTP on host:port, apart from the public ports, or off; with N workers, worker k uses port+k",
    )
    # Long enough for health watchers to see NOT_SERVING and for calls already sent to reach a
    # handler (grpc/grpc#41785 cancels those that have not); measured under load in
    # tests/load/test_load_drain.py. Kubernetes' preStop pause covers endpoint removal. Five
    # minutes at most: more is a typo (Kubernetes' default termination grace is 30 s).
    drain_delay_s: Seconds = Field(
        1.0,
        le=300,
        description="on SIGTERM/SIGINT, how long to keep serving after health turns NOT_SERVING, before "
        "the grace period starts, seconds; 0 stops at once",
    )
    # None: each process remembers the DPoP proofs it accepted (jwt_authn's memory store), so with
    # several replicas a proof could be replayed once against each of the others.
    dpop_replay_redis_url: Annotated[Text, AfterValidator(_redis_url)] | None = Field(
        None,
        description="redis:// (rediss:// for TLS) URL of a Redis all replicas share to remember accepted "
        "DPoP proofs, so a proof passes once across them; down: DPoP calls are refused (fail closed)",
    )


class ServiceSettings(AuthnSettings, ServiceRuntime, WorkerSettings, ProgramSettings):
    """Everything ``python -m service`` can be told."""

    prog: ClassVar[str] = PROG
    description: ClassVar[str] = (
        "The secureroute gRPC service: Health is public, SecureRoute needs a bearer token."
    )
    inline: ClassVar[frozenset[str]] = frozenset({"grpc"})

    grpc: GrpcServer = GrpcServer()

    @model_validator(mode="after")
    def _one_process_per_socket_path(self) -> Self:
        if self.grpc.listen_unix is not None and self.workers > 1:
            # Workers share a TCP port through SO_REUSEPORT; a socket path has no such sharing
            # (each bind would replace the previous worker's socket), so we refuse.
            raise ValueError("listen_unix: cannot be shared by several workers; set workers = 1")
        return self


def load_service_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServiceSettings:
    """Read flags, env vars and the optional TOML file. Raises ``SettingsError``."""
    return load(ServiceSettings, argv, environ)


def authn_config(settings: ServiceSettings) -> AuthnConfig:
    """The jwt_authn config for these settings. Raises ``ValueError("setting: problem")``."""
    return guard_settings.authn_config(settings, public_methods=(HEALTH_METHOD,))
