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
    max_concurrent_streams: int
    max_connection_idle: float
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
        # Off: no surprise port; 9464 is the port OpenTelemetry's Prometheus exporter made common.
        None,
        "serve Prometheus /metrics over HTTP on host:port (e.g. 0.0.0.0:9464), or off; "
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
        "calls served at once across all connections (health watches included); "
        "more are answered RESOURCE_EXHAUSTED (HTTP 429 at the facade)",
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
