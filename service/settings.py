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
    parse_listen,
    parse_optional_listen,
)
from secureroute.shared_settings import check_together, process_rows, server_tls_rows

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
    # Process rows (secureroute.shared_settings).
    workers: int
    grace_period: float
    log_level: str
    log_format: str

    def __post_init__(self) -> None:
        check_together(self, "tls_cert", "tls_key")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_cert: required when tls_client_ca is set (mutual TLS needs TLS)")


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
