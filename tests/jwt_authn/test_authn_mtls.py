"""Certificate-bound tokens (RFC 8705) and DPoP over TLS, through real TLS servers on loopback
with certificates made here: the aiohttp middleware (the certificate from the TLS object) and
the three gRPC server kinds (from the call's auth context).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from authn_helpers import cert_pem, certificate, key_pem
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from dpop_servers import KINDS, TLS, Server, start

from jwt_authn import AuthnConfig, IssuerConfig, Policy, certificate_thumbprint
from jwt_authn.testing import LoopbackIssuer, generate_key, make_dpop_proof


@dataclass(frozen=True)
class Pki:
    ca: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes
    other_client_cert: bytes
    other_client_key: bytes


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = certificate("jwt_authn test CA", None)
    server = certificate("localhost", ca, server=True)
    client = certificate("client", ca)
    other = certificate("another client", ca)
    return Pki(
        ca=cert_pem(ca[0]),
        server_cert=cert_pem(server[0]),
        server_key=key_pem(server[1]),
        client_cert=cert_pem(client[0]),
        client_key=key_pem(client[1]),
        other_client_cert=cert_pem(other[0]),
        other_client_key=key_pem(other[1]),
    )


def _thumbprint(pem: bytes) -> str:
    return certificate_thumbprint(
        x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    )


@pytest.fixture(params=KINDS)
async def serve(
    request: pytest.FixtureRequest,
    issuer: LoopbackIssuer,
    clock: Any,
    issuer_config: Callable[..., IssuerConfig],
) -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    """``await serve(tls)``: a server of each kind, with TLS and client certificates or without."""
    servers: list[Server] = []

    async def make(tls: TLS | None = None, **issuer_settings: Any) -> Server:
        config = AuthnConfig(
            issuers=(issuer_config(issuer, **issuer_settings),), policy=Policy(), clock=clock
        )
        server = await start(str(request.param), config, tls=tls)
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


def _tls(pki: Pki, *, other_client: bool = False) -> TLS:
    return TLS(
        server_cert=pki.server_cert,
        server_key=pki.server_key,
        client_ca=pki.ca,
        ca=pki.ca,
        client_cert=pki.other_client_cert if other_client else pki.client_cert,
        client_key=pki.other_client_key if other_client else pki.client_key,
    )


async def test_a_certificate_bound_token_passes_with_its_certificate_only(
    serve: Any, pki: Pki, issuer: LoopbackIssuer, clock: Any
) -> None:
    token = issuer.tokens.issue(now=clock.now, claims={"cnf": {"x5t#S256": _thumbprint(pki.client_cert)}})
    server = await serve(_tls(pki))
    assert (await server.call(f"Bearer {token}")).outcome == "ok"
    # Another certificate from the same CA: the TLS handshake passes, the binding does not.
    other = await serve(_tls(pki, other_client=True))
    answer = await other.call(f"Bearer {token}")
    assert (answer.outcome, answer.reason) == ("unauthenticated", "certificate_mismatch")
    assert answer.challenges[0].startswith('Bearer error="invalid_token"')
    # No TLS, no certificate.
    plain = await serve()
    answer = await plain.call(f"Bearer {token}")
    assert (answer.outcome, answer.reason) == ("unauthenticated", "certificate_missing")
    # A thumbprint of non-ASCII text in the token is a mismatch, not an error.
    odd = issuer.tokens.issue(now=clock.now, claims={"cnf": {"x5t#S256": "é" * 43}})
    answer = await server.call(f"Bearer {odd}")
    assert (answer.outcome, answer.reason) == ("unauthenticated", "certificate_mismatch")
    # An unbound token needs no certificate, over TLS or not.
    assert (await other.call(f"Bearer {issuer.tokens.issue(now=clock.now)}")).outcome == "ok"


async def test_require_sender_constrained_accepts_a_certificate_bound_token(
    serve: Any, pki: Pki, issuer: LoopbackIssuer, clock: Any
) -> None:
    server = await serve(_tls(pki), require_sender_constrained=True)
    bound = issuer.tokens.issue(now=clock.now, claims={"cnf": {"x5t#S256": _thumbprint(pki.client_cert)}})
    assert (await server.call(f"Bearer {bound}")).outcome == "ok"
    answer = await server.call(f"Bearer {issuer.tokens.issue(now=clock.now)}")
    assert (answer.outcome, answer.reason) == ("unauthenticated", "sender_constraint_required")


async def test_dpop_over_tls_expects_an_https_htu(
    serve: Any, pki: Pki, issuer: LoopbackIssuer, clock: Any
) -> None:
    server = await serve(_tls(pki))
    key = generate_key("ES256")
    token = issuer.tokens.issue(now=clock.now, claims={"cnf": {"jkt": key.thumbprint()}})
    assert server.htu.startswith("https://")

    def proof(htu: str) -> str:
        return make_dpop_proof(key, htm=server.htm, htu=htu, iat=clock.now, token=token)

    assert (await server.call(f"DPoP {token}", [proof(server.htu)])).outcome == "ok"
    answer = await server.call(f"DPoP {token}", [proof(server.htu.replace("https://", "http://"))])
    assert (answer.outcome, answer.reason) == ("unauthenticated", "dpop_htu_mismatch")


async def test_a_token_bound_to_both_needs_both(
    serve: Any, pki: Pki, issuer: LoopbackIssuer, clock: Any
) -> None:
    key = generate_key("ES256")
    cnf = {"jkt": key.thumbprint(), "x5t#S256": _thumbprint(pki.client_cert)}
    token = issuer.tokens.issue(now=clock.now, claims={"cnf": cnf})
    server = await serve(_tls(pki))
    other = await serve(_tls(pki, other_client=True))
    for target, expected in ((server, "ok"), (other, "certificate_mismatch")):
        proof = make_dpop_proof(key, htm=target.htm, htu=target.htu, iat=clock.now, token=token)
        answer = await target.call(f"DPoP {token}", [proof])
        assert (answer.outcome if expected == "ok" else answer.reason) == expected, answer
