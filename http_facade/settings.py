"""The HTTP facade's settings: its listener group, its backend channel, the shared process group.

Usage:
    settings = load_facade_settings(["--listen", "127.0.0.1:3000", "--backend", "localhost:50051"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from runtime.settings import (
    Count,
    ExistingFile,
    GrpcTarget,
    Listen,
    ListenAddress,
    OptionalListen,
    PositiveSeconds,
    ProgramSettings,
    Seconds,
    SubSettings,
    Text,
    load,
)
from runtime.shared_settings import ProcessSettings, ServerTLSSettings, WorkerSettings, check_pair

__all__ = [
    "PROG",
    "BackendDeadline",
    "BackendSettings",
    "FacadeHttpListener",
    "FacadeSettings",
    "HttpListener",
    "load_facade_settings",
]

PROG = "secureroute-facade"


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"must be an http(s) URL without query or fragment: {value!r}")
    return value.rstrip("/")


BaseUrl = Annotated[Text, AfterValidator(_base_url)]


class HttpListener(ServerTLSSettings):
    """The HTTP listener (variables ``SECUREROUTE_HTTP_*``) and its limits."""

    # All interfaces, as the facade is the public front door (and runs in a container);
    # 3000 is the port the original Node.js facade served on.
    listen: Listen = Field(ListenAddress("0.0.0.0", 3000), description="HTTP address, host:port")  # noqa: S104
    # nginx's keepalive_timeout, above AWS ALB's 60 s idle timeout (a proxy must give up on
    # an idle connection before we do). aiohttp's own 3,630 s lets idle sockets pile up.
    keepalive_timeout_s: PositiveSeconds = Field(
        75.0,
        description="close a connection that has no whole request head this long after it opened or "
        "after its last response (idle keep-alive), seconds",
    )
    # Apache's mod_reqtimeout starts at 20 s and nginx's client_header_timeout is 60 s; a
    # head is one packet for an honest client, so 10 s is generous and holds a slowloris
    # connection a sixth as long as nginx would.
    header_timeout_s: PositiveSeconds = Field(
        10.0,
        description="how long a request head may take from its first byte, seconds; slower ones are "
        "answered 408 and the connection closes (slowloris)",
    )
    # Twice jwt_authn's 8 KiB token cap, half of nginx's 4 x 8 KiB: a token with many
    # claims fits, and a connection's head costs at most this much.
    max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="largest request head (request line and all header fields), bytes; more is answered "
        "431 and the connection closes",
    )
    # Browsers send about 15, proxies add a few; many tiny fields cost aiohttp far more
    # memory than their bytes, so the count is capped apart from max_header_bytes.
    max_headers: int = Field(
        32,
        ge=1,
        le=1000,
        description="most header fields in a request; more are answered 431 and the connection closes",
    )
    # About 24 KiB each with a full head (measured in docs/reliability.md): 2,000 add about
    # 50 MB to a ~55 MB process, inside the 256 MiB of deploy/split/facade.yaml, and are far more
    # than a pod serves at once.
    max_connections: Count = Field(
        2000,
        description="open connections at once per process; a new one past it is closed at once "
        "(worst-case memory: about max_connections x (max_header_bytes + 8 KiB))",
    )
    # Off, as Envoy, Express and gunicorn ship: a line per request cost more than a warm request
    # (docs/benchmarks.md); the request metrics count every request anyway.
    access_log: bool = Field(
        False, description="log one line per request at INFO (aiohttp's access log, with the request id)"
    )


class FacadeHttpListener(HttpListener):
    """The facade's HTTP listener and its own admin listener (the one program has one for both)."""

    # Loopback, never the public port: process facts and traffic counts are for the operator
    # (a pod address such as 0.0.0.0:9465 lets Prometheus scrape). The port after the
    # service's 9464, so both programs run on one host with their defaults.
    metrics_listen: OptionalListen = Field(
        ListenAddress("127.0.0.1", 9465),
        description="the admin listener: Prometheus /metrics and the probes /health and /ready over plain "
        "HTTP on host:port, apart from the public port, or off; with N workers, worker k uses port+k "
        "(each shows the sum of all workers)",
    )


class BackendDeadline(SubSettings):
    """The deadline of each backend call, remote or in-process (the one program has it too)."""

    # Long enough for a cold key-set fetch (jwt_authn's fetch timeout is 5 s), short enough for a user.
    backend_timeout_s: PositiveSeconds = Field(
        5.0, description="deadline of each backend call, seconds; a slower backend answers 504"
    )


class BackendSettings(BackendDeadline):
    """The gRPC channel to the service."""

    # Where `python -m service` listens by default.
    backend: GrpcTarget = Field("localhost:50051", description="gRPC target of the service")
    # Plaintext, as the service serves by default (a sidecar or mesh may add TLS).
    backend_tls: bool = Field(
        False, description="talk TLS to the backend (verified against backend_ca, else the system's CAs)"
    )
    backend_ca: ExistingFile | None = Field(
        None, description="PEM CA bundle that signed the backend's certificate"
    )
    backend_client_cert: ExistingFile | None = Field(
        None, description="PEM client certificate for mutual TLS to the backend"
    )
    backend_client_key: ExistingFile | None = Field(
        None, description="PEM private key of backend_client_cert"
    )
    backend_server_name: Text | None = Field(
        None, description="name expected in the backend's certificate, when it differs from the target host"
    )

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        check_pair(self, "backend_client_cert", "backend_client_key")
        for name in ("backend_ca", "backend_client_cert", "backend_server_name"):
            if getattr(self, name) is not None and not self.backend_tls:
                raise ValueError(f"{name}: needs --backend-tls (SECUREROUTE_BACKEND_TLS=true)")
        return self


class FacadeSettings(BackendSettings, ProcessSettings, WorkerSettings, ProgramSettings):
    """Everything ``python -m http_facade`` can be told."""

    prog: ClassVar[str] = PROG
    description: ClassVar[str] = (
        "The secureroute HTTP facade: GET /health and GET /secure-route, backed by gRPC."
    )
    inline: ClassVar[frozenset[str]] = frozenset({"http"})

    http: FacadeHttpListener = FacadeHttpListener()
    # None: the URL as this facade sees it (its own scheme, the Host the client sent), as
    # jwt_authn's aiohttp middleware does without public_base_urls.
    dpop_public_base_url: BaseUrl | None = Field(
        None,
        description="the URL clients reach the facade at (https://api.example.com), when a proxy in "
        "front changes it: the URL passed on with a DPoP proof is this plus the request's path",
    )
    # Well inside Kubernetes' default 30 s terminationGracePeriodSeconds.
    grace_period_s: Seconds = Field(
        5.0, description="on SIGTERM/SIGINT, how long open requests may still finish, seconds"
    )


def load_facade_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> FacadeSettings:
    """Read flags, env vars and the optional TOML file. Raises ``SettingsError``."""
    return load(FacadeSettings, argv, environ)
