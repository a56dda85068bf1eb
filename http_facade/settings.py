"""The HTTP facade's settings: one table, one frozen dataclass, shared machinery in secureroute.settings.

Usage:
    settings = load_facade_settings(["--listen", "127.0.0.1:3000", "--backend", "localhost:50051"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from secureroute.settings import (
    ListenAddress,
    Setting,
    load_settings,
    parse_bool,
    parse_existing_file,
    parse_listen,
    parse_positive_duration,
    parse_str,
    parse_target,
)
from secureroute.shared_settings import check_together, process_rows, server_tls_rows

__all__ = ["FACADE_SETTINGS", "PROG", "FacadeSettings", "load_facade_settings"]

PROG = "secureroute-facade"


@dataclass(frozen=True, kw_only=True, slots=True)
class FacadeSettings:
    """Everything ``python -m http_facade`` can be told. Field names are the setting names."""

    listen: ListenAddress
    tls_cert: str | None
    tls_key: str | None
    metrics: bool
    backend: str
    backend_timeout: float
    backend_tls: bool
    backend_ca: str | None
    backend_client_cert: str | None
    backend_client_key: str | None
    backend_server_name: str | None
    keepalive_timeout: float
    workers: int
    grace_period: float
    log_level: str
    log_format: str

    def __post_init__(self) -> None:
        check_together(self, "tls_cert", "tls_key")
        check_together(self, "backend_client_cert", "backend_client_key")
        tls_only = ("backend_ca", "backend_client_cert", "backend_server_name")
        for name in tls_only:
            if getattr(self, name) is not None and not self.backend_tls:
                raise ValueError(f"{name}: needs --backend-tls (SECUREROUTE_BACKEND_TLS=true)")


FACADE_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "listen",
        "SECUREROUTE_HTTP_LISTEN",
        parse_listen,
        # All interfaces, as the facade is the public front door (and runs in a container);
        # 3000 is the port the original Node.js facade served on.
        ListenAddress("0.0.0.0", 3000),  # noqa: S104
        "HTTP address, host:port",
    ),
    *server_tls_rows("SECUREROUTE_HTTP_", client_ca=False),
    Setting(
        "metrics",
        "SECUREROUTE_HTTP_METRICS",
        parse_bool,
        # On: Prometheus scrapes the facade where it serves.
        True,
        "serve Prometheus metrics on GET /metrics",
        switch=True,
    ),
    # Where `python -m service` listens by default.
    Setting("backend", "SECUREROUTE_BACKEND", parse_target, "localhost:50051", "gRPC target of the service"),
    Setting(
        "backend_timeout",
        "SECUREROUTE_BACKEND_TIMEOUT",
        parse_positive_duration,
        # Long enough for a cold key-set fetch (jwt_authn's fetch timeout is 5 s), short enough for a user.
        5.0,
        "deadline of each backend call, seconds; a slower backend answers 504",
    ),
    Setting(
        "backend_tls",
        "SECUREROUTE_BACKEND_TLS",
        parse_bool,
        # Plaintext, as the service serves by default (a sidecar or mesh may add TLS).
        False,
        "talk TLS to the backend (verified against backend_ca, else the system's CAs)",
        switch=True,
    ),
    Setting(
        "backend_ca",
        "SECUREROUTE_BACKEND_CA",
        parse_existing_file,
        None,
        "PEM CA bundle that signed the backend's certificate",
    ),
    Setting(
        "backend_client_cert",
        "SECUREROUTE_BACKEND_CLIENT_CERT",
        parse_existing_file,
        None,
        "PEM client certificate for mutual TLS to the backend",
    ),
    Setting(
        "backend_client_key",
        "SECUREROUTE_BACKEND_CLIENT_KEY",
        parse_existing_file,
        None,
        "PEM private key of backend_client_cert",
    ),
    Setting(
        "backend_server_name",
        "SECUREROUTE_BACKEND_SERVER_NAME",
        parse_str,
        None,
        "name expected in the backend's certificate, when it differs from the target host",
    ),
    Setting(
        "keepalive_timeout",
        "SECUREROUTE_HTTP_KEEPALIVE_TIMEOUT",
        parse_positive_duration,
        # nginx's keepalive_timeout, above AWS ALB's 60 s idle timeout (a proxy must give up on
        # an idle connection before we do). aiohttp's own 3,630 s lets idle sockets pile up.
        75.0,
        "close a connection idle this long, seconds; it also bounds the time a client may take "
        "to send a request's headers (slowloris)",
    ),
    *process_rows(
        # Well inside Kubernetes' default 30 s terminationGracePeriodSeconds.
        grace_default=5.0,
        grace_help="on SIGTERM/SIGINT, how long open requests may still finish, seconds",
    ),
)


def load_facade_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> FacadeSettings:
    """Read flags, env vars and the optional TOML file. Raises ``SettingsError``."""
    return load_settings(
        FacadeSettings,
        FACADE_SETTINGS,
        prog=PROG,
        description="The secureroute HTTP facade: GET /health and GET /secure-route, backed by gRPC.",
        argv=argv,
        environ=environ,
    )
