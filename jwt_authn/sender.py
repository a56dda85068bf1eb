"""What a transport knows about the sender of one request, for sender-constrained tokens.

A bound token (RFC 7800 ``cnf``) is only as good as the check that its sender holds the key
(DPoP, RFC 9449) or the certificate (mTLS, RFC 8705) it names. The adapters describe the request
in a ``SenderContext`` (its DPoP proofs, method and target URI, the peer's address, the client
certificate's thumbprint) and the Authenticator decides. Nothing here verifies anything.

gRPC metadata names (HTTP uses the same names as headers):

- ``dpop``: the proof (exactly one);
- ``dpop-htm`` / ``dpop-htu``: the method and URL of the original request, set by a proxy that
  forwards it (the split deployment's facade); honoured only from ``DPoPConfig.trusted_proxies``;
- ``dpop-nonce``: a fresh server nonce, in the trailers of a ``use_dpop_nonce`` rejection.

Usage:
    sender = SenderContext(proofs=(proof,), target=ProofTarget("GET", uris=("https://api.example.com/orders",)))
    principal = await authenticator.authenticate(["DPoP eyJ..."], "/shop.v1.Orders/List", sender=sender)
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import ssl
from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "DPOP_HTM_METADATA",
    "DPOP_HTU_METADATA",
    "DPOP_METADATA",
    "DPOP_NONCE_METADATA",
    "CallContextNeeded",
    "ProofTarget",
    "SenderContext",
    "certificate_thumbprint",
    "is_trusted_peer",
    "peer_address",
    "pem_certificate_thumbprint",
]

DPOP_METADATA = "dpop"
DPOP_HTM_METADATA = "dpop-htm"
DPOP_HTU_METADATA = "dpop-htu"
DPOP_NONCE_METADATA = "dpop-nonce"


class ProofTarget(NamedTuple):
    """What a proof's ``htm`` and ``htu`` must say for this request."""

    #: The request's method: ``POST`` for every gRPC call (gRPC's HTTP/2 mapping).
    htm: str
    #: Accepted target URIs (any query and fragment removed); compared after RFC 3986
    #: normalisation.
    uris: tuple[str, ...] = ()
    #: When the authority cannot be known (a Python gRPC server is not told ``:authority``,
    #: grpc/grpc#38906) and no public base URL is configured: the scheme and path the proof's
    #: ``htu`` must have, its authority being whatever the client named.
    scheme_and_path: tuple[str, str] | None = None


class SenderContext(NamedTuple):
    """The request as the transport sees it. ``Authenticator.authenticate`` without one checks
    plain bearer tokens only (a bound token is refused: its proof or certificate is unknown)."""

    #: Every ``DPoP`` header (HTTP) or ``dpop`` metadata value (gRPC), as received.
    proofs: Sequence[str] = ()
    #: What the proof must match; None while it cannot be known (see ``call_context_known``).
    target: ProofTarget | None = None
    #: ``dpop-htm`` / ``dpop-htu`` values as received (a proxy's forwarded method and URL).
    forwarded_htm: Sequence[str] = ()
    forwarded_htu: Sequence[str] = ()
    #: The IP address of the connection's peer (never a forwarded-for header); None if unknown.
    peer_address: str | None = None
    #: base64url SHA-256 of the DER client certificate the TLS handshake presented (RFC 8705 §3.1);
    #: None when there is none.
    certificate_thumbprint: str | None = None
    #: False in a gRPC interceptor, which sees only the method and metadata: the peer, TLS and
    #: client certificate are known to the call's handler context alone. A check that needs them
    #: raises ``CallContextNeeded``, and the adapter repeats the authentication there.
    call_context_known: bool = True


class CallContextNeeded(Exception):
    """Raised by ``Authenticator.authenticate`` when a check needs what only the call's context
    knows (peer address, TLS, client certificate). Never reaches a client."""


def certificate_thumbprint(der: bytes) -> str:
    """RFC 8705 §3.1 ``x5t#S256``: base64url (no padding) of SHA-256 over the DER certificate."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def pem_certificate_thumbprint(pem: bytes | str) -> str | None:
    """``certificate_thumbprint`` of a PEM certificate (gRPC's ``x509_pem_cert``); None if unreadable."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    try:
        return certificate_thumbprint(ssl.PEM_cert_to_DER_cert(text))
    except (ValueError, TypeError):
        return None


def peer_address(grpc_peer: str | None) -> str | None:
    """The IP address in a gRPC peer string (``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000``)."""
    if not grpc_peer:
        return None
    kind, _, rest = grpc_peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or None
    if kind == "ipv6":
        host = rest.rpartition(":")[0]
        return host[1:-1] if host.startswith("[") and host.endswith("]") else None
    return None  # unix sockets and others: no address to trust


def is_trusted_peer(address: str | None, networks: Sequence[str]) -> bool:
    """``address`` lies in one of ``networks`` (``DPoPConfig.trusted_proxies``)."""
    if address is None or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(network) for network in networks)
