"""The HTTP facade's settings: its listener group, its backend channel, the shared process group.

Usage:
    settings = load_facade_settings(["--listen", "127.0.0.1:3000", "--backend", "localhost:50051"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Self

from pydantic import Field, model_validator

from secureroute.settings import (
    ExistingFile,
    GrpcTarget,
    Listen,
    ListenAddress,
    PositiveSeconds,
    ProgramSettings,
    Seconds,
    SubSettings,
    Text,
    load,
)
from secureroute.shared_settings import ProcessSettings, ServerTLSSettings, check_pair

__all__ = ["PROG", "BackendSettings", "FacadeSettings", "HttpServer", "load_facade_settings"]

PROG = "secureroute-facade"


class HttpServer(ServerTLSSettings):
    """The HTTP listener (variables ``SECUREROUTE_HTTP_*``)."""

    # All interfaces, as the facade is the public front door (and runs in a container);
    # 3000 is the port the original Node.js facade served on.
    listen: Listen = Field(ListenAddress("0.0.0.0", 3000), description="HTTP address, host:port")  # noqa: S104
    # On: Prometheus scrapes the facade where it serves.
    metrics: bool = Field(True, description="serve Prometheus metrics on GET /metrics")
    # nginx's keepalive_timeout, above AWS ALB's 60 s idle timeout (a proxy must give up on
    # an idle connection before we do). aiohttp's own 3,630 s lets idle sockets pile up.
    keepalive_timeout: PositiveSeconds = Field(
        75.0,
        description="close a connection idle this long, seconds; it also bounds the time a client may "
        "take to send a request's headers (slowloris)",
    )


class BackendSettings(SubSettings):
    """The gRPC channel to the service."""

    # Where `python -m service` listens by default.
    backend: GrpcTarget = Field("localhost:50051", description="gRPC target of the service")
    # Long enough for a cold key-set fetch (jwt_authn's fetch timeout is 5 s), short enough for a user.
    backend_timeout: PositiveSeconds = Field(
        5.0, description="deadline of each backend call, seconds; a slower backend answers 504"
    )
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


class FacadeSettings(BackendSettings, ProcessSettings, ProgramSettings):
    """Everything ``python -m http_facade`` can be told."""

    prog: ClassVar[str] = PROG
    description: ClassVar[str] = (
        "The secureroute HTTP facade: GET /health and GET /secure-route, backed by gRPC."
    )
    inline: ClassVar[frozenset[str]] = frozenset({"http"})

    http: HttpServer = HttpServer()
    # Well inside Kubernetes' default 30 s terminationGracePeriodSeconds.
    grace_period: Seconds = Field(
        5.0, description="on SIGTERM/SIGINT, how long open requests may still finish, seconds"
    )


def load_facade_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> FacadeSettings:
    """Read flags, env vars and the optional TOML file. Raises ``SettingsError``."""
    return load(FacadeSettings, argv, environ)
