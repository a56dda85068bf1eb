"""The HTTP facade's settings: its listener group, its backend channel, the shared process group.

Usage:
    settings = FacadeSettings.load(["--listen", "127.0.0.1:3000", "--backend", "localhost:50051"])
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, PlainValidator, model_validator

from runtime.listen import Listen, ListenAddress, OptionalListen, split_host_port
from runtime.settings import (
    Count,
    ExistingFile,
    PositiveSeconds,
    ProcessSettings,
    ProgramSettings,
    Seconds,
    ServerTLSSettings,
    SubSettings,
    Text,
    WorkerSettings,
    check_pair,
)

__all__ = ["BackendDeadline", "FacadeHttpListener", "FacadeSettings", "HttpListener"]


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"must be an http(s) URL without query or fragment: {value!r}")
    return value.rstrip("/")


def _grpc_target(value: object) -> str:
    """``host:port``, ``[ipv6]:port``, or a ``scheme:`` target (``dns:///h:p``)."""
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise ValueError("must be a gRPC target such as localhost:50051")
    text = value.strip()
    if not re.match(r"^(dns|unix|unix-abstract|ipv4|ipv6|xds):", text) and split_host_port(text)[1] == 0:
        raise ValueError(f"port 0 is not a reachable port: {text!r}")
    return text


class HttpListener(ServerTLSSettings):
    """The HTTP listener (variables ``SECUREROUTE_HTTP_*``) and its limits."""

    # All interfaces: the facade is the public front door; 3000 is the original Node.js facade's port.
    listen: Listen = ListenAddress("0.0.0.0", 3000)  # noqa: S104
    """HTTP address, host:port"""
    # nginx's keepalive_timeout, above AWS ALB's 60 s idle one (aiohttp's 3,630 s lets idle sockets pile up).
    keepalive_timeout_s: PositiveSeconds = 75.0
    """close a connection that has no whole request head this long after it opened or after its last
    response (idle keep-alive), seconds"""
    # Below Apache's 20 s and nginx's 60 s: an honest client's head is one packet (slowloris).
    header_timeout_s: PositiveSeconds = 10.0
    """how long a request head may take from its first byte, seconds; slower ones are answered 408 and
    the connection closes (slowloris)"""
    # Twice jwt_authn's 8 KiB token cap, half of nginx's 4 x 8 KiB.
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    """largest request head (request line and all header fields), bytes; more is answered 431 and the
    connection closes"""
    # Browsers send about 15, proxies add a few; tiny fields cost aiohttp far more than their bytes.
    max_headers: int = Field(32, ge=1, le=1000)
    """most header fields in a request; more are answered 431 and the connection closes"""
    # About 24 KiB each with a full head (docs/reliability.md): fits deploy/split/facade.yaml's 256 MiB.
    max_connections: Count = 2000
    """open connections at once per process; a new one past it is closed at once (worst-case memory:
    about max_connections x (max_header_bytes + 8 KiB))"""
    # Off, as Envoy, Express and gunicorn ship: a line cost more than a warm request (docs/benchmarks.md).
    access_log: bool = False
    """log one line per request at INFO (aiohttp's access log, with the request id)"""


class FacadeHttpListener(HttpListener):
    """The facade's HTTP listener and its own admin listener (the one program has one for both)."""

    # Loopback, for the operator; the port after the service's 9464, so both run on one host.
    metrics_listen: OptionalListen = ListenAddress("127.0.0.1", 9465)
    """the admin listener: Prometheus /metrics and the probes /health and /ready over plain HTTP on
    host:port, apart from the public port, or off; with N workers, worker k uses port+k (each shows the
    sum of all workers)"""


class BackendDeadline(SubSettings):
    """The deadline of each backend call, remote or in-process (the one program has it too)."""

    # Long enough for a cold key-set fetch (jwt_authn's fetch timeout is 5 s), short enough for a user.
    backend_timeout_s: PositiveSeconds = 5.0
    """deadline of each backend call, seconds; a slower backend answers 504"""


class BackendSettings(BackendDeadline):
    """The gRPC channel to the service."""

    # Where `python -m service` listens by default.
    backend: Annotated[str, PlainValidator(_grpc_target)] = "localhost:50051"
    """gRPC target of the service"""
    # Plaintext, as the service serves by default (a sidecar or mesh may add TLS); the next four need it.
    backend_tls: bool = False
    """talk TLS to the backend (verified against backend_ca, else the system's CAs)"""
    backend_ca: ExistingFile | None = None
    """PEM CA bundle that signed the backend's certificate"""
    backend_client_cert: ExistingFile | None = None
    """PEM client certificate for mutual TLS to the backend"""
    backend_client_key: ExistingFile | None = None
    """PEM private key of backend_client_cert"""
    backend_server_name: Text | None = None
    """name expected in the backend's certificate, when it differs from the target host"""

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        check_pair(self, "backend_client_cert", "backend_client_key")
        for name in ("backend_ca", "backend_client_cert", "backend_server_name"):
            if getattr(self, name) is not None and not self.backend_tls:
                raise ValueError(f"{name}: needs --backend-tls (SECUREROUTE_BACKEND_TLS=true)")
        return self


class FacadeSettings(BackendSettings, ProcessSettings, WorkerSettings, ProgramSettings):
    """Everything ``python -m http_facade`` can be told."""

    prog: ClassVar[str] = "secureroute-facade"
    description: ClassVar[str] = (
        "The secureroute HTTP facade: GET /health and GET /secure-route, backed by gRPC."
    )
    inline: ClassVar[frozenset[str]] = frozenset({"http"})

    http: FacadeHttpListener = FacadeHttpListener()
    # None: the URL as the facade sees it (its scheme, the client's Host), as jwt_authn's middleware does.
    dpop_public_base_url: Annotated[Text, AfterValidator(_base_url)] | None = None
    """the URL clients reach the facade at (https://api.example.com), when a proxy in front changes it:
    the URL passed on with a DPoP proof is this plus the request's path"""
    # Well inside Kubernetes' default 30 s terminationGracePeriodSeconds.
    grace_period_s: Seconds = 5.0
    """on SIGTERM/SIGINT, how long open requests may still finish, seconds"""
