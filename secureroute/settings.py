"""The one program's settings: the service's and the facade's groups, composed.

Flags and variables keep the split programs' names where they mean the same thing
(``--grpc-listen``/``SECUREROUTE_GRPC_LISTEN``, ``--http-listen``/``SECUREROUTE_HTTP_LISTEN``,
``--issuer``, ``--audience``, TLS, limits, drain). One metrics listener, ``metrics_listen``:
the service's registry, which the HTTP side's series join, so it shows gRPC calls by method and
code, HTTP requests by route and status, the one guard's outcomes and the one key set's state.

Usage:
    settings = SecureRouteSettings.load(["--grpc-listen", "127.0.0.1:0", "--issuer", ...])
    service_settings, facade_settings = split_settings(settings)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from http_facade.settings import BackendDeadline, FacadeHttpListener, FacadeSettings, HttpListener
from runtime.settings import ProgramSettings
from service.settings import AuthnSettings, GrpcServer, ServiceRuntime, ServiceSettings

__all__ = ["SecureRouteSettings", "load_secureroute_settings", "split_settings"]


class SecureRouteSettings(AuthnSettings, ServiceRuntime, BackendDeadline, ProgramSettings):
    """Everything ``python -m secureroute`` can be told."""

    prog: ClassVar[str] = "secureroute"
    description: ClassVar[str] = (
        "secureroute as one program: the gRPC service and the HTTP facade in one process, "
        "the HTTP routes answering in-process behind the same guard."
    )

    grpc: GrpcServer = GrpcServer()
    http: HttpListener = HttpListener()


load_secureroute_settings = SecureRouteSettings.load


def _picked(settings: SecureRouteSettings, fields: Mapping[str, object]) -> dict[str, Any]:
    """The fields of ``fields`` the one program has, but the listener groups (given apart)."""
    return {
        name: getattr(settings, name)
        for name in fields
        if name not in ("grpc", "http") and hasattr(settings, name)
    }


def split_settings(settings: SecureRouteSettings) -> tuple[ServiceSettings, FacadeSettings]:
    """The service's and the facade's settings inside the one program (built, not re-read)."""
    service = ServiceSettings.model_construct(
        **_picked(settings, ServiceSettings.model_fields), grpc=settings.grpc
    )
    facade = FacadeSettings.model_construct(
        **_picked(settings, FacadeSettings.model_fields),
        # The one program's metrics are on its one admin listener, metrics_listen.
        http=FacadeHttpListener.model_construct(**dict(settings.http), metrics_listen=None),
    )
    return service, facade
