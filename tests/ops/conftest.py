"""Fixtures for the operations tests: a throwaway PKI, programs run as real processes, JSON logs.

The PKI is made with ``cryptography`` (already installed with jwcrypto): a CA, a server
certificate for 127.0.0.1/localhost, a client certificate, an expired server certificate, and
an unrelated CA. EC P-256 keys: generated in milliseconds.

Usage:
    def test_x(pki: Pki) -> None:
        pki.ca_cert, pki.server_cert, pki.server_key, pki.client_cert, pki.expired_cert ...

    async def test_y(spawn: Spawn) -> None:
        program = await spawn("service", "--issuer", url, ...)
        port = (await program.listening()).port
"""

from __future__ import annotations

import datetime
import ipaddress
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dev_stack.children import Child
from http_facade import FacadeSettings
from http_facade.runner import FacadeServer
from runtime.tls import ServerTLS, ssl_server_context


@dataclass(frozen=True)
class Pki:
    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    expired_cert: str
    expired_key: str
    other_ca_cert: str
    other_client_cert: str
    other_client_key: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> str:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(path)


def _write_cert(path: Path, cert: x509.Certificate) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _ca(common_name: str, now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca = _ca("secureroute test CA", now)
    other_ca = _ca("someone else's CA", now)
    valid = {"not_before": now - datetime.timedelta(hours=1), "not_after": now + datetime.timedelta(days=7)}
    server = _leaf("localhost", ca, server=True, **valid)
    client = _leaf("secureroute-facade", ca, server=False, **valid)
    other_client = _leaf("intruder", other_ca, server=False, **valid)
    expired = _leaf(
        "localhost",
        ca,
        server=True,
        not_before=now - datetime.timedelta(days=10),
        not_after=now - datetime.timedelta(days=1),
    )
    return Pki(
        ca_cert=_write_cert(directory / "ca.pem", ca[0]),
        server_cert=_write_cert(directory / "server.pem", server[0]),
        server_key=_write_key(directory / "server-key.pem", server[1]),
        client_cert=_write_cert(directory / "client.pem", client[0]),
        client_key=_write_key(directory / "client-key.pem", client[1]),
        expired_cert=_write_cert(directory / "expired.pem", expired[0]),
        expired_key=_write_key(directory / "expired-key.pem", expired[1]),
        other_ca_cert=_write_cert(directory / "other-ca.pem", other_ca[0]),
        other_client_cert=_write_cert(directory / "other-client.pem", other_client[0]),
        other_client_key=_write_key(directory / "other-client-key.pem", other_client[1]),
    )


Spawn = Callable[..., Coroutine[Any, Any, Child]]


@pytest.fixture
async def spawn(make_env: Callable[..., dict[str, str]], tmp_path: Path) -> AsyncIterator[Spawn]:
    """``await spawn("service", *args, env=...)``: ``python -m <module>`` with JSON logs (in a clean
    environment unless ``env`` is given), started by ``dev_stack.children.Child``."""
    started: list[Child] = []

    async def start(module: str, *args: str, env: dict[str, str] | None = None) -> Child:
        argv = [sys.executable, "-m", module, "--log-format", "json", *args]
        log = tmp_path / f"{module}-{len(started)}.log"
        started.append(Child.start(module, argv, log=log, env=env if env is not None else make_env()))
        return started[-1]

    yield start
    for program in started:
        await program.stop(signal.SIGKILL)


@pytest.fixture
async def serve_facade() -> AsyncIterator[Callable[..., Coroutine[Any, Any, str]]]:
    """``await serve_facade("--backend", target, *flags)``: the real facade in-process; returns its base URL
    (https:// when ``--tls-cert`` is among the flags)."""
    servers: list[FacadeServer] = []

    async def start(*flags: str) -> str:
        # No metrics port unless the flags name one: facades of one run would share the default.
        settings = FacadeSettings.load(
            ["--listen", "127.0.0.1:0", "--metrics-listen", "off", *flags], environ={}
        )
        context = None
        if settings.http.tls_cert is not None and settings.http.tls_key is not None:
            context = ssl_server_context(ServerTLS(settings.http.tls_cert, settings.http.tls_key))
        server = FacadeServer(settings, ssl_context=context, shutdown_timeout_s=0.5)
        await server.start()
        servers.append(server)
        return server.url()

    yield start
    for server in servers:
        await server.stop()
