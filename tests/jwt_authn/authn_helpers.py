"""Helpers the jwt_authn tests import (their fixtures live in conftest.py): a token's outcome,
the principal's subject, an aiohttp app served on loopback, the ``test.v1.Echo`` service the gRPC
tests serve, and certificates for the TLS tests.

Usage:
    from authn_helpers import ECHO_SERVICE, echo_methods, outcome, subject_or_anonymous

    assert await outcome(authenticator, token) == "token_expired"
    runner, port = await serve_on_loopback(app)  # await runner.cleanup() stops it
    handler = grpc.method_handlers_generic_handler(ECHO_SERVICE, echo_methods(aio=True))
    ca = certificate("test CA", None); server = certificate("localhost", ca, server=True)
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jwt_authn import Authenticator, KeySetUnavailable, Unauthenticated, current_principal

__all__ = [
    "ECHO_SERVICE",
    "cert_pem",
    "certificate",
    "echo_methods",
    "key_pem",
    "outcome",
    "serve_on_loopback",
    "subject_or_anonymous",
]

#: A tiny service of raw-bytes methods that answer with the caller's subject.
ECHO_SERVICE = "test.v1.Echo"


async def outcome(authenticator: Authenticator, token: str) -> str:
    """``"accepted"`` when ``token`` verifies, else the stable reason it was refused for."""
    try:
        await authenticator.verify(token)
    except (Unauthenticated, KeySetUnavailable) as error:
        return error.reason
    return "accepted"


def subject_or_anonymous() -> str:
    """What a handler of the test servers answers: the subject of ``current_principal()``, or
    ``"anonymous"`` when the call has none (a public method)."""
    try:
        return current_principal().subject
    except LookupError:
        return "anonymous"


async def serve_on_loopback(
    app: web.Application, *, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """``app`` served on 127.0.0.1 at a port the kernel picks: its runner (``cleanup()`` stops it,
    at once) and the port."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]


def _who() -> bytes:
    return subject_or_anonymous().encode()


# --- the Echo servicer, async and sync: every call shape answers with the subject ---------------


async def _aio_unary(request: bytes, context: Any) -> bytes:
    await asyncio.sleep(0)
    return _who()


async def _aio_server_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for _ in range(2):
        await asyncio.sleep(0)
        yield _who()


async def _aio_server_stream_write(request: bytes, context: Any) -> None:
    await context.write(_who())
    await context.write(_who())


async def _aio_client_stream(requests: AsyncIterator[bytes], context: Any) -> bytes:
    async for _ in requests:
        pass
    return _who()


async def _aio_bidi(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for _ in requests:
        yield _who()


def _sync_unary(request: bytes, context: Any) -> bytes:
    return _who()


def _sync_server_stream(request: bytes, context: Any) -> Iterator[bytes]:
    for _ in range(2):
        yield _who()


def _sync_client_stream(requests: Iterator[bytes], context: Any) -> bytes:
    for _ in requests:
        pass
    return _who()


def _sync_bidi(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
    for _ in requests:
        yield _who()


def echo_methods(*, aio: bool) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """The Echo service's methods by name: ``Unary``, ``ServerStream``, ``ClientStream``, ``Bidi``
    and, on grpc.aio (the only API with ``context.write``), ``ServerStreamWrite``."""
    methods = {
        "Unary": grpc.unary_unary_rpc_method_handler(_aio_unary if aio else _sync_unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(
            _aio_server_stream if aio else _sync_server_stream
        ),
        "ClientStream": grpc.stream_unary_rpc_method_handler(
            _aio_client_stream if aio else _sync_client_stream
        ),
        "Bidi": grpc.stream_stream_rpc_method_handler(_aio_bidi if aio else _sync_bidi),
    }
    if aio:
        methods["ServerStreamWrite"] = grpc.unary_stream_rpc_method_handler(_aio_server_stream_write)
    return methods


# --- certificates for the TLS servers ------------------------------------------------------------


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def certificate(
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for ``name`` and its key: a self-signed CA when ``issuer`` is None, else a leaf
    signed by ``issuer`` for client authentication, or for a server on localhost/127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        return builder.sign(key, hashes.SHA256()), key
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), critical=False
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer[1], hashes.SHA256()), key


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
