"""TLS material from PEM files: checked at start (one-line errors), turned into gRPC and ssl objects.

Each function reads the files once, at start; a bad file, a key that does not match its
certificate, or a CA file with no certificate is a ``SettingsError`` naming the setting.

Usage:
    credentials = grpc_server_credentials(ServerTLS(cert_file, key_file, client_ca_file=None))
    server.add_secure_port("[::]:50051", credentials)
    ssl_context = ssl_server_context(ServerTLS(cert_file, key_file))       # aiohttp's TCPSite
    channel_credentials = grpc_channel_credentials(ClientTLS(ca_file=ca))  # the facade's backend
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import grpc

from runtime.settings import SettingsError

__all__ = [
    "ClientTLS",
    "ServerTLS",
    "check_client_tls",
    "check_server_tls",
    "grpc_channel_credentials",
    "grpc_server_credentials",
    "ssl_server_context",
]


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """A server's certificate chain and key; with ``client_ca_file``, clients must present a
    certificate signed by that CA (mutual TLS)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    #: Setting names, for error messages.
    cert_setting: str = "tls_cert"
    key_setting: str = "tls_key"
    client_ca_setting: str = "tls_client_ca"


@dataclass(frozen=True, slots=True)
class ClientTLS:
    """How a client checks the server (``ca_file``, else the system's roots) and, for mutual
    TLS, the client's own certificate and key."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    ca_setting: str = "backend_ca"
    cert_setting: str = "backend_client_cert"


def _read(path: str, setting: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as err:
        raise SettingsError(f"{setting}: cannot read {path!r}: {err.strerror}") from None


def _check_chain(cert_file: str, key_file: str, setting: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as err:
        reason = getattr(err, "reason", None) or getattr(err, "strerror", None) or str(err)
        raise SettingsError(
            f"{setting}: {cert_file!r} and {key_file!r} are not a PEM certificate and its key ({reason})"
        ) from None


def _check_ca(ca_file: str, setting: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=ca_file)
    except (ssl.SSLError, OSError) as err:
        reason = getattr(err, "reason", None) or getattr(err, "strerror", None) or str(err)
        raise SettingsError(f"{setting}: {ca_file!r} holds no usable PEM certificate ({reason})") from None


def check_server_tls(tls: ServerTLS) -> None:
    """Raise ``SettingsError`` unless every file parses and the key fits the certificate."""
    _check_chain(tls.cert_file, tls.key_file, tls.cert_setting)
    if tls.client_ca_file is not None:
        _check_ca(tls.client_ca_file, tls.client_ca_setting)


def check_client_tls(tls: ClientTLS) -> None:
    if tls.ca_file is not None:
        _check_ca(tls.ca_file, tls.ca_setting)
    if tls.cert_file is not None and tls.key_file is not None:
        _check_chain(tls.cert_file, tls.key_file, tls.cert_setting)


def grpc_server_credentials(tls: ServerTLS) -> grpc.ServerCredentials:
    check_server_tls(tls)
    pair = (_read(tls.key_file, tls.key_setting), _read(tls.cert_file, tls.cert_setting))
    client_ca = None if tls.client_ca_file is None else _read(tls.client_ca_file, tls.client_ca_setting)
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def ssl_server_context(tls: ServerTLS) -> ssl.SSLContext:
    """An HTTPS server context (TLS 1.2 or later); requires client certificates when a CA is given."""
    check_server_tls(tls)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file is not None:
        context.load_verify_locations(cafile=tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def grpc_channel_credentials(tls: ClientTLS) -> grpc.ChannelCredentials:
    check_client_tls(tls)
    ca = None if tls.ca_file is None else _read(tls.ca_file, tls.ca_setting)
    key = cert = None
    if tls.cert_file is not None and tls.key_file is not None:
        cert, key = _read(tls.cert_file, tls.cert_setting), _read(tls.key_file, tls.cert_setting)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
