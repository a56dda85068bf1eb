"""The one program's settings: the service's and the facade's groups, composed.

Flags and variables keep the split programs' names where they mean the same thing
(``--grpc-listen``/``SECUREROUTE_GRPC_LISTEN``, ``--http-listen``/``SECUREROUTE_HTTP_LISTEN``,
``--issuer``, ``--audience``, TLS, limits, drain). One metrics listener, ``metrics_listen``:
the service's registry, which the HTTP side's series join, so it shows gRPC calls by method and
code, HTTP requests by route and status, the one guard's outcomes and the one key set's state.

Usage:
    settings = load_one_settings(["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", ...])
    service_settings, facade_settings = split_settings(settings)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from http_facade.settings import BackendDeadline, FacadeSettings, HttpServer
from secureroute.authn_settings import AuthnSettings
from secureroute.settings import OptionalListen, ProgramSettings, load
from service.settings import GrpcServer, ServiceRuntime, ServiceSettings

__all__ = ["PROG", "OneHttpServer", "OneProgramSettings", "load_one_settings", "split_settings"]

PROG = "secureroute"


class OneHttpServer(HttpServer):
    """The HTTP listener of the one program (variables ``SECUREROUTE_HTTP_*``)."""

    # Off: the one program has one metrics listener, metrics_listen.
    metrics_listen: OptionalListen = Field(
        None, description="not served by the one program (its metrics are on metrics_listen); must be off"
    )

    @model_validator(mode="after")
    def _one_metrics_listener(self) -> Self:
        if self.metrics_listen is not None:
            raise ValueError(
                "metrics_listen: the one program serves its metrics on metrics_listen; leave off"
            )
        return self


class OneProgramSettings(AuthnSettings, ServiceRuntime, BackendDeadline, ProgramSettings):
    """Everything ``python -m secureroute`` can be told."""

    prog: ClassVar[str] = PROG
    description: ClassVar[str] = (
        "secureroute as one program: the gRPC service and the HTTP facade in one process, "
        "the HTTP routes answering in-process behind the same guard."
    )

    grpc: GrpcServer = GrpcServer()
    http: OneHttpServer = OneHttpServer()


def load_one_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> OneProgramSettings:
    """Read flags, env vars and the optional TOML file. Raises ``SettingsError``."""
    return load(OneProgramSettings, argv, environ)


def _picked(settings: OneProgramSettings, fields: Mapping[str, object]) -> dict[str, Any]:
    """The fields of ``fields`` the one program has, but the listener groups (given apart)."""
    return {
        name: getattr(settings, name)
        for name in fields
        if name not in ("grpc", "http") and hasattr(settings, name)
    }


def split_settings(settings: OneProgramSettings) -> tuple[ServiceSettings, FacadeSettings]:
    """The service's and the facade's settings inside the one program (built, not re-read)."""
    service = ServiceSettings.model_construct(
        **_picked(settings, ServiceSettings.model_fields), grpc=settings.grpc
    )
    facade = FacadeSettings.model_construct(
        **_picked(settings, FacadeSettings.model_fields),
        http=HttpServer.model_construct(
            **{name: getattr(settings.http, name) for name in HttpServer.model_fields}
        ),
    )
    return service, facade
