"""A development-only OpenID Connect issuer: discovery, JWKS, client credentials, code + PKCE,
DPoP-bound tokens (RFC 9449 §5).

Never imported by ``service``, ``http_facade`` or ``jwt_authn``: production code must not
depend on an issuer that signs tokens for anyone.

Usage:
    python -m dev_issuer serve --listen 127.0.0.1:8080
    python -m dev_issuer token --issuer-url http://127.0.0.1:8080 --sub alice --role admin
    python -m dev_issuer rotate --url http://127.0.0.1:8080
    python -m dev_issuer dpop-key --out key.json && python -m dev_issuer token --dpop-key key.json
"""

from dev_issuer.app import bind_socket, create_app, start_site, url_for
from dev_issuer.config import DEFAULT_CLIENTS, ClientConfig, IssuerConfig

__all__ = [
    "DEFAULT_CLIENTS",
    "ClientConfig",
    "IssuerConfig",
    "bind_socket",
    "create_app",
    "start_site",
    "url_for",
]
