"""The gRPC service's settings: one table, one frozen dataclass; the jwt_authn config is built from it.

Usage:
    settings = load_service_settings(["--issuer", "https://idp.example.com/", "--audience", "secureroute"])
    config = authn_config(settings)  # raises ValueError("audience: ...") on a bad combination
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jwt_authn.config import AuthnConfig
from secureroute import authn_settings
from secureroute.authn_settings import AUTHN_SETTINGS
from secureroute.settings import (
    ListenAddress,
    Setting,
    load_settings,
    parse_duration_at_most,
    parse_int_between,
    parse_listen,
    parse_optional_listen,
    parse_positive_duration,
)
from secureroute.shared_settings import check_together, process_rows, server_tls_rows
from secureroute.unix_socket import parse_unix_socket_path

__all__ = [
    "HEALTH_METHOD",
    "PROG",
    "SERVICE_SETTINGS",
    "ServiceSettings",
    "authn_config",
    "load_service_settings",
]

PROG = "secureroute-service"
#: Our own Health RPC answers load balancers and the facade's /health without credentials.
HEALTH_METHOD = "/secureroute.v1.SecureRouteService/Health"


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceSettings:
    """Everything ``python -m service`` can be told. Field names are the setting names."""

    listen: ListenAddress
    listen_unix: str | None
    metrics_listen: ListenAddress | None
    tls_cert: str | None
    tls_key: str | None
    tls_client_ca: str | None
    # The bearer-token rows (secureroute.authn_settings).
    issuer: str
    audience: tuple[str, ...]
    allow_any_audience: bool
    jwks_uri: str | None
    jwks_file: str | None
    allow_insecure_http: bool
    algorithms: tuple[str, ...]
    leeway: float
    require_at_jwt: bool
    roles_claim: str
    fetch_timeout: float
    refresh_interval: float
    cooldown: float
    max_staleness: float
    token_cache_size: int
    max_token_bytes: int
    realm: str
    # Limits and shutdown.
    max_concurrent_rpcs: int
    max_anonymous_rpcs: int
    max_anonymous_streams: int
    request_message_timeout: float
    max_concurrent_streams: int
    max_connection_idle: float
    max_connection_age: float
    max_connection_age_grace: float
    drain_delay: float
    # Process rows (secureroute.shared_settings).
    workers: int
    grace_period: float
    log_level: str
    log_format: str

    def __post_init__(self) -> None:
        check_together(self, "tls_cert", "tls_key")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_cert: required when tls_client_ca is set (mutual TLS needs TLS)")
        if self.listen_unix is not None and self.workers > 1:
            # Workers share a TCP port through SO_REUSEPORT; a socket path has no such sharing
            # (each bind would replace the previous worker's socket), so we refuse.
            raise ValueError("listen_unix: cannot be shared by several workers; set workers = 1")
        if self.max_anonymous_rpcs + self.max_anonymous_streams >= self.max_concurrent_rpcs:
            # Authenticated calls must keep room that anonymous ones cannot take.
            raise ValueError(
                "max_anonymous_rpcs: with max_anonymous_streams it must stay below max_concurrent_rpcs "
                f"({self.max_anonymous_rpcs} + {self.max_anonymous_streams} >= {self.max_concurrent_rpcs})"
            )


SERVICE_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "listen",
        "SECUREROUTE_GRPC_LISTEN",
        parse_listen,
        # All interfaces, gRPC's conventional port.
        ListenAddress("::", 50051),
        "address to serve gRPC on, host:port ([::]:port for IPv6, port 0 picks a free port)",
    ),
    Setting(
        "listen_unix",
        "SECUREROUTE_GRPC_LISTEN_UNIX",
        parse_unix_socket_path,
        # Off: only co-located clients (a facade on the same host) have a use for it.
        None,
        "also serve gRPC on this Unix socket (absolute path, its directory must exist), with the "
        "same TLS as listen; the socket gets the process umask, so the directory's permissions decide "
        "who may connect; needs workers = 1",
    ),
    Setting(
        "metrics_listen",
        "SECUREROUTE_METRICS_LISTEN",
        parse_optional_listen,
        # Loopback: process facts and traffic counts are for the operator, never the public side
        # (a pod address such as 0.0.0.0:9464 lets Prometheus scrape); 9464 is the port
        # OpenTelemetry's Prometheus exporter made common.
        ListenAddress("127.0.0.1", 9464),
        "serve Prometheus /metrics over plain HTTP on host:port, apart from the gRPC port, or off; "
        "with N workers, worker k uses port+k",
    ),
    *server_tls_rows("SECUREROUTE_GRPC_", client_ca=True),
    *AUTHN_SETTINGS,
    Setting(
        "max_concurrent_rpcs",
        "SECUREROUTE_GRPC_MAX_CONCURRENT_RPCS",
        parse_int_between(1, 1_000_000),
        # Five times the 200 calls the load tests keep in flight: it only stops a pile-up (each
        # waiting call costs memory), never a busy but healthy service.
        1000,
        "calls served at once across all connections, anonymous ones included; "
        "more are answered RESOURCE_EXHAUSTED (HTTP 429 at the facade)",
    ),
    Setting(
        "max_anonymous_rpcs",
        "SECUREROUTE_GRPC_MAX_ANONYMOUS_RPCS",
        parse_int_between(1, 1_000_000),
        # A tenth of max_concurrent_rpcs: probes and /health answer in a millisecond, so 100 at
        # once is far above any honest need, and an anonymous flood leaves 80 % to token holders.
        100,
        "unary calls without a token at once (health Check, Health); more are answered "
        "RESOURCE_EXHAUSTED at once; health Watch streams cannot take this room",
    ),
    Setting(
        "max_anonymous_streams",
        "SECUREROUTE_GRPC_MAX_ANONYMOUS_STREAMS",
        parse_int_between(1, 1_000_000),
        # Health Watch (and reflection) streams live long and anyone may open them: a tenth of
        # max_concurrent_rpcs, apart from the unary room so watchers cannot starve probes.
        100,
        "streaming calls without a token at once (health Watch, reflection); more are answered "
        "RESOURCE_EXHAUSTED at once",
    ),
    Setting(
        "request_message_timeout",
        "SECUREROUTE_GRPC_REQUEST_MESSAGE_TIMEOUT",
        parse_positive_duration,
        # Kubernetes' default probe timeout: clients send the message with the call's headers, so
        # only a caller that withholds it waits; it then holds an anonymous slot this long at most.
        1.0,
        "how long a call without a token may take to send its request message, seconds; "
        "slower ones are answered DEADLINE_EXCEEDED (calls with an invalid token are refused "
        "without waiting for it)",
    ),
    Setting(
        "max_concurrent_streams",
        "SECUREROUTE_GRPC_MAX_CONCURRENT_STREAMS",
        parse_int_between(1, 1_000_000),
        # Half of max_concurrent_rpcs: one connection cannot take every slot, yet a facade process
        # (all its calls on one connection) has room. Not nginx's 128: grpc-core refuses a few
        # streams (REFUSED_STREAM, seen as UNAVAILABLE) whenever a connection runs at the limit,
        # as its overload protection counts streams still finishing; see the README.
        512,
        "calls at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS); a client's "
        "further calls wait on its side, and a few may fail UNAVAILABLE while it runs at the limit",
    ),
    Setting(
        "max_connection_idle",
        "SECUREROUTE_GRPC_MAX_CONNECTION_IDLE",
        # A day at most: gRPC takes milliseconds as a 32-bit int (at most ~24.8 days).
        parse_duration_at_most(86_400),
        # Long enough that a steady client never reconnects, short enough that abandoned
        # connections do not pile up; gRPC clients reconnect by themselves on their next call.
        300.0,
        "close a connection without calls for this long (GOAWAY), seconds; 0 keeps it open",
    ),
    Setting(
        "max_connection_age",
        "SECUREROUTE_GRPC_MAX_CONNECTION_AGE",
        parse_duration_at_most(86_400),
        # Half an hour: long-lived connections get rebalanced onto new pods after a scale-up,
        # and a health Watch cannot stay open for ever (it ends at age + grace).
        1800.0,
        "send a connection a GOAWAY after this long, seconds (clients reconnect by themselves); "
        "0 keeps it open",
    ),
    Setting(
        "max_connection_age_grace",
        "SECUREROUTE_GRPC_MAX_CONNECTION_AGE_GRACE",
        parse_duration_at_most(86_400),
        # Calls take at most the facade's 5 s deadline; 30 s leaves room for slower clients.
        30.0,
        "after that GOAWAY, how long calls still open (health Watch streams) may run, seconds",
    ),
    Setting(
        "drain_delay",
        "SECUREROUTE_DRAIN_DELAY",
        # Five minutes at most: more is a typo (Kubernetes' default termination grace is 30 s).
        parse_duration_at_most(300),
        # Long enough for health watchers to see NOT_SERVING and for calls already sent to reach a
        # handler (grpc/grpc#41785 cancels those that have not); measured under load in
        # tests/load/test_load_drain.py. Kubernetes' preStop pause covers endpoint removal.
        1.0,
        "on SIGTERM/SIGINT, how long to keep serving after health turns NOT_SERVING, before the "
        "grace period starts, seconds; 0 stops at once",
    ),
    *process_rows(
        # Well inside Kubernetes' default 30 s terminationGracePeriodSeconds.
        grace_default=10.0,
        grace_help="on SIGTERM/SIGINT, how long in-flight RPCs may still run, seconds",
    ),
)


def load_service_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServiceSettings:
    """Read flags, env vars and the optional TOML file. Raises ``SettingsError``."""
    return load_settings(
        ServiceSettings,
        SERVICE_SETTINGS,
        prog=PROG,
        description="The secureroute gRPC service: Health is public, SecureRoute needs a bearer token.",
        argv=argv,
        environ=environ,
    )


def authn_config(settings: ServiceSettings) -> AuthnConfig:
    """The jwt_authn config for these settings. Raises ``ValueError("setting: problem")``."""
    return authn_settings.authn_config(settings, public_methods=(HEALTH_METHOD,))
