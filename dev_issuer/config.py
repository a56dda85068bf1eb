"""Typed, frozen configuration of the development issuer, validated at construction.

The issuer is for development only: it signs whatever a registered client asks for. The
settings here decide who may ask (clients, redirect URIs), what may be asked (scopes,
roles, lifetimes) and where the signing keys live.

Usage:
    config = IssuerConfig(issuer_url="http://127.0.0.1:8080", state_dir=Path(".dev-state/issuer"))
    app = create_app(config)
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_CLIENTS",
    "DEFAULT_SCOPES",
    "LOOPBACK_CALLBACK",
    "POSTMAN_BROWSER_CALLBACK",
    "POSTMAN_CALLBACK",
    "ROLE_PATTERN",
    "SCOPE_TOKEN_PATTERN",
    "SIGNING_ALGORITHMS",
    "ClientConfig",
    "IssuerConfig",
    "check_bind_host",
    "is_loopback_host",
    "parse_listen",
]

#: Postman's "Authorize using browser: off" callback (Postman docs, OAuth 2.0 authorization).
POSTMAN_CALLBACK = "https://oauth.pstmn.io/v1/callback"
#: Postman's "Authorize using browser: on" callback.
POSTMAN_BROWSER_CALLBACK = "https://oauth.pstmn.io/v1/browser-callback"
#: A loopback redirect URI for native apps and tests; any port matches (RFC 8252 §7.3).
LOOPBACK_CALLBACK = "http://127.0.0.1/callback"
#: The algorithms the issuer holds a key for (one RSA-2048 and one P-256 key).
SIGNING_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256")

#: The scopes every issuer supports; ``serve --scope`` and the TOML file's ``scopes`` add more.
DEFAULT_SCOPES: tuple[str, ...] = ("openid", "profile", "email", "read", "write", "admin")

#: RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN_PATTERN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")
#: Role names: short and boring, so they are safe in HTML, logs and claims.
ROLE_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _require(condition: bool, setting: str, problem: str) -> None:
    if not condition:
        raise ValueError(f"{setting}: {problem}")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_host(host: str, *, allow_non_loopback: bool) -> None:
    """Refuse to listen beyond loopback unless explicitly allowed: this issuer mints tokens for anyone."""
    _require(
        allow_non_loopback or is_loopback_host(host),
        "listen",
        f"{host!r} is not a loopback address; the development issuer signs tokens for anyone who asks, "
        "so it binds 127.0.0.1 unless --allow-non-loopback is given",
    )


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``host:port`` or ``[v6]:port`` into a host and a port (0 picks a free port)."""
    host, sep, port_text = listen.rpartition(":")
    _require(
        bool(sep) and bool(host) and port_text.isdigit(), "listen", f"expected host:port, got {listen!r}"
    )
    port = int(port_text)
    _require(0 <= port <= 65535, "listen", f"port out of range: {port}")
    return host.strip("[]"), port


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientConfig:
    """One registered OAuth client."""

    client_id: str
    #: None makes a public client (RFC 6749 §2.1): no secret, authorization code + PKCE only.
    client_secret: str | None = None
    #: Exact redirect URIs; a loopback ``http://127.0.0.1/...`` entry matches any port (RFC 8252 §7.3).
    redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ("authorization_code",)
    #: Scope granted when a request names none (RFC 6749 §3.3 lets the server pick a default).
    default_scope: str = "openid read"
    #: Dev-only extension: the client may pick ``sub``, ``roles``, ``ttl`` and ``alg`` on client_credentials.
    may_set_subject: bool = False

    def __post_init__(self) -> None:
        _require(bool(self.client_id) and ":" not in self.client_id, "client_id", "non-empty, without ':'")
        _require(self.client_secret is None or bool(self.client_secret), "client_secret", "None or non-empty")
        for uri in self.redirect_uris:
            parts = urlsplit(uri)
            _require(
                parts.scheme in ("https", "http") and bool(parts.hostname) and not parts.fragment,
                "redirect_uris",
                f"must be absolute http(s) URIs without a fragment (RFC 6749 §3.1.2): {uri!r}",
            )
        unknown = set(self.grant_types) - {"authorization_code", "client_credentials"}
        _require(not unknown, "grant_types", f"unsupported: {sorted(unknown)}")
        _require(
            "client_credentials" not in self.grant_types or self.client_secret is not None,
            "grant_types",
            "a public client cannot use client_credentials (it has no credentials)",
        )

    @property
    def is_public(self) -> bool:
        return self.client_secret is None


#: The confidential client scripts and tests use, and the public client Postman uses.
DEFAULT_CLIENTS: tuple[ClientConfig, ...] = (
    ClientConfig(
        client_id="secureroute-dev",
        client_secret="secureroute-dev-secret",  # noqa: S106 - a published development credential
        redirect_uris=(POSTMAN_CALLBACK, POSTMAN_BROWSER_CALLBACK, LOOPBACK_CALLBACK),
        grant_types=("client_credentials", "authorization_code"),
        may_set_subject=True,
    ),
    ClientConfig(
        client_id="postman",
        redirect_uris=(POSTMAN_CALLBACK, POSTMAN_BROWSER_CALLBACK, LOOPBACK_CALLBACK),
    ),
)


@dataclass(frozen=True, kw_only=True, slots=True)
class IssuerConfig:
    """Everything the development issuer needs."""

    #: The issuer identifier and base URL (``iss``; OIDC Discovery §3): scheme, host and port, no path.
    issuer_url: str
    #: Where the signing keys persist, owner-only (dir 0700, files 0600).
    state_dir: Path = Path(".dev-state/issuer")
    #: ``aud`` when a request names none; the service is started with ``--audiences secureroute``.
    default_audience: str = "secureroute"
    #: Access-token lifetime, seconds (1 h, a common IdP default).
    token_ttl_s: int = 3600
    #: Longest lifetime a request or ``--ttl`` may ask for, seconds (1 day).
    max_token_ttl_s: int = 86_400
    #: Authorization-code lifetime, seconds (RFC 6749 §4.1.2 recommends at most 10 minutes; we keep 60 s).
    code_ttl_s: float = 60.0
    #: How long the login page stays valid, seconds.
    login_ttl_s: float = 600.0
    #: How long a rotated-out key stays published after it stopped signing, seconds (10 min: longer than
    #: a verifier's JWKS cache).
    rotation_grace_s: float = 600.0
    #: The max-age of the JWKS and discovery documents (Cache-Control), seconds; a rotated-in key
    #: signs only this long after it was published. 60 s: jwt_authn's shortest routine refresh.
    jwks_max_age_s: int = 60
    #: Algorithm of the key that signs when a request does not choose.
    default_algorithm: str = "RS256"
    clients: tuple[ClientConfig, ...] = DEFAULT_CLIENTS
    #: Scopes a client may ask for; anything else is ``invalid_scope``.
    scopes_supported: tuple[str, ...] = DEFAULT_SCOPES
    #: Roles offered as checkboxes on the login page.
    roles_offered: tuple[str, ...] = ("admin", "editor", "viewer")
    #: Wall clock, injectable for tests (code expiry, key grace periods, token times).
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer_url)
        _require(
            parts.scheme in ("http", "https") and bool(parts.hostname),
            "issuer_url",
            f"not an http(s) URL: {self.issuer_url!r}",
        )
        _require(
            parts.path in ("", "/") and not parts.query and not parts.fragment,
            "issuer_url",
            "must be scheme://host[:port] with no path, query or fragment",
        )
        # The identifier is compared as an exact string by verifiers: keep one spelling.
        object.__setattr__(self, "issuer_url", self.issuer_url.rstrip("/"))
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        _require(bool(self.default_audience.strip()), "audience", "must not be empty")
        _require(1 <= self.max_token_ttl_s <= 7 * 86_400, "max_ttl", "must be between 1 s and 7 days")
        _require(1 <= self.token_ttl_s <= self.max_token_ttl_s, "ttl", f"must be 1..{self.max_token_ttl_s} s")
        _require(0 < self.code_ttl_s <= 600, "code_ttl", "must be in (0, 600] s (RFC 6749 §4.1.2)")
        _require(0 < self.login_ttl_s <= 3600, "login_ttl", "must be in (0, 3600] s")
        _require(self.rotation_grace_s >= 0, "rotation_grace", "must not be negative")
        _require(0 <= self.jwks_max_age_s <= 86_400, "jwks_max_age", "must be 0..86400 s")
        _require(
            self.default_algorithm in SIGNING_ALGORITHMS,
            "algorithm",
            f"one of {', '.join(SIGNING_ALGORITHMS)}",
        )
        ids = [c.client_id for c in self.clients]
        _require(bool(ids) and len(set(ids)) == len(ids), "clients", "at least one, each client_id once")
        bad_scopes = [s for s in self.scopes_supported if not SCOPE_TOKEN_PATTERN.fullmatch(s)]
        _require(
            not bad_scopes,
            "scopes",
            f'not a scope token (RFC 6749 §3.3: 1-128 printable ASCII, no space, " or \\): {bad_scopes!r}',
        )
        _require(
            all(ROLE_PATTERN.fullmatch(r) for r in self.roles_offered),
            "roles",
            "roles are [A-Za-z0-9_.:-]{1,64}",
        )
        for c in self.clients:
            extra = set(c.default_scope.split()) - set(self.scopes_supported)
            _require(not extra, "clients", f"{c.client_id}: default scope not supported: {sorted(extra)}")

    def client(self, client_id: str) -> ClientConfig | None:
        """The registered client with this id, or None."""
        return next((c for c in self.clients if c.client_id == client_id), None)
