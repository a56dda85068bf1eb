"""The settings groups compose: a program serving gRPC and HTTP together is a few lines, no third copy.

This is the shape the one-program issue (#14) needs: ``--grpc-listen`` / ``SECUREROUTE_GRPC_LISTEN``
and ``--http-listen`` / ``SECUREROUTE_HTTP_LISTEN`` beside every other setting of both programs.
"""

from __future__ import annotations

from typing import ClassVar

from http_facade.settings import HttpServer
from secureroute.authn_settings import AuthnSettings
from secureroute.settings import ListenAddress, ProgramSettings, load, settings_of
from service.settings import GrpcServer, ServiceRuntime


class OneProgramSettings(AuthnSettings, ServiceRuntime, ProgramSettings):
    prog: ClassVar[str] = "secureroute"
    description: ClassVar[str] = "gRPC and HTTP from one process."

    grpc: GrpcServer = GrpcServer()
    http: HttpServer = HttpServer()


def test_groups_not_inlined_carry_their_name_in_flags_and_keys() -> None:
    rows = {row.name: row for row in settings_of(OneProgramSettings)}
    assert (
        rows["grpc_listen"].flag == "--grpc-listen" and rows["grpc_listen"].env == "SECUREROUTE_GRPC_LISTEN"
    )
    assert (
        rows["http_listen"].flag == "--http-listen" and rows["http_listen"].env == "SECUREROUTE_HTTP_LISTEN"
    )
    assert rows["http_tls_cert"].env == "SECUREROUTE_HTTP_TLS_CERT"  # the variables the split programs read
    assert {"issuer", "audiences", "workers", "drain_delay", "metrics_listen"} <= set(rows)
    settings = load(
        OneProgramSettings,
        ["--grpc-listen", "127.0.0.1:1", "--issuer", "https://idp.example.com/", "--audience", "a"],
        {"SECUREROUTE_HTTP_LISTEN": "127.0.0.1:2"},
    )
    assert settings.grpc.listen == ListenAddress("127.0.0.1", 1)
    assert settings.http.listen == ListenAddress("127.0.0.1", 2)
    assert settings.audiences == ("a",)
