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
    parse_int_between,
    parse_listen,
    parse_optional_listen,
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
    metrics_listen: ListenAddress | None
    backend: str
    backend_timeout: float
    backend_tls: bool
    backend_ca: str | None
    backend_client_cert: str | None
    backend_client_key: str | None
    backend_server_name: str | None
    keepalive_timeout: float
    header_timeout: float
    max_header_bytes: int
    max_headers: int
    max_connections: int
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
        "metrics_listen",
        "SECUREROUTE_HTTP_METRICS_LISTEN",
        parse_optional_listen,
        # Loopback, never the public port: process facts and traffic counts are for the operator
        # (a pod address such as 0.0.0.0:9465 lets Prometheus scrape). The port after the
        # service's 9464, so both programs run on one host with their defaults.
        ListenAddress("127.0.0.1", 9465),
        "serve Prometheus /metrics over plain HTTP on host:port, apart from the public port, or "
        "off; with N workers, worker k uses port+k (each shows the sum of all workers)",
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
        "close a connection that has no whole request head this long after it opened or after its "
        "last response (idle keep-alive), seconds",
    ),
    Setting(
        "header_timeout",
        "SECUREROUTE_HTTP_HEADER_TIMEOUT",
        parse_positive_duration,
        # Apache's mod_reqtimeout starts at 20 s and nginx's client_header_timeout is 60 s; a
        # head is one packet for an honest client, so 10 s is generous and holds a slowloris
        # connection a sixth as long as nginx would.
        10.0,
        "how long a request head may take from its first byte, seconds; slower ones are "
        "answered 408 and the connection closes (slowloris)",
    ),
    Setting(
        "max_header_bytes",
        "SECUREROUTE_HTTP_MAX_HEADER_BYTES",
        parse_int_between(1024, 1024 * 1024),
        # Twice jwt_authn's 8 KiB token cap, half of nginx's 4 x 8 KiB: a token with many
        # claims fits, and a connection's head costs at most this much.
        16 * 1024,
        "largest request head (request line and all header fields), bytes; more is answered "
        "431 and the connection closes",
    ),
    Setting(
        "max_headers",
        "SECUREROUTE_HTTP_MAX_HEADERS",
        parse_int_between(1, 1000),
        # Browsers send about 15, proxies add a few; many tiny fields cost aiohttp far more
        # memory than their bytes, so the count is capped apart from max_header_bytes.
        32,
        "most header fields in a request; more are answered 431 and the connection closes",
    ),
    Setting(
        "max_connections",
        "SECUREROUTE_HTTP_MAX_CONNECTIONS",
        parse_int_between(1, 1_000_000),
        # About 24 KiB each with a full head (measured in docs/reliability.md): 2,000 add about
        # 50 MB to a ~55 MB process, inside the 256 MiB of deploy/facade.yaml, and are far more
        # than a pod serves at once.
        2000,
        "open connections at once per process; a new one past it is closed at once "
        "(worst-case memory: about max_connections x (max_header_bytes + 8 KiB))",
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
