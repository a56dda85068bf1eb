"""The one program's settings: the service's and the facade's groups, composed under the split
programs' names (``--grpc-listen``/``SECUREROUTE_GRPC_LISTEN``, ``--http-listen``, ``--issuer``, TLS,
limits, drain), with one admin listener, ``metrics_listen``, for both transports' series.

Usage:
    settings = SecureRouteSettings.load(["--grpc-listen", "127.0.0.1:0", "--issuer", ...])
    service_settings, facade_settings = split_settings(settings)
"""

from __future__ import annotations

from typing import Any, ClassVar

from http_facade.settings import BackendDeadline, FacadeHttpListener, FacadeSettings, HttpListener
from runtime.settings import ProgramSettings
from service.settings import AuthnSettings, GrpcServer, ServiceRuntime, ServiceSettings

__all__ = ["SecureRouteSettings", "split_settings"]


class SecureRouteSettings(AuthnSettings, ServiceRuntime, BackendDeadline, ProgramSettings):
    """Everything ``python -m secureroute`` can be told."""

    prog: ClassVar[str] = "secureroute"
    description: ClassVar[str] = (
        "secureroute as one program: the gRPC service and the HTTP facade in one process, "
        "the HTTP routes answering in-process behind the same guard."
    )

    grpc: GrpcServer = GrpcServer()
    http: HttpListener = HttpListener()


def split_settings(settings: SecureRouteSettings) -> tuple[ServiceSettings, FacadeSettings]:
    """The service's and the facade's settings inside the one program (built, not re-read)."""

    def picked(cls: type[ProgramSettings]) -> dict[str, Any]:  # the listener groups are given apart
        names = set(cls.model_fields) & set(SecureRouteSettings.model_fields) - {"grpc", "http"}
        return {name: getattr(settings, name) for name in names}

    # The one program's metrics are on its one admin listener, metrics_listen.
    http = FacadeHttpListener.model_construct(**dict(settings.http), metrics_listen=None)
    return (
        ServiceSettings.model_construct(**picked(ServiceSettings), grpc=settings.grpc),
        FacadeSettings.model_construct(**picked(FacadeSettings), http=http),
    )
