"""The bearer-token settings of a service embedding jwt_authn, and their ONE mapping to AuthnConfig.

The rows name operator-facing knobs (seconds as plain numbers, comma lists); ``authn_config``
turns them into jwt_authn's frozen config, whose own validation names the setting on error.
Defaults are read from jwt_authn's config classes, so they cannot drift apart.

Usage:
    TABLE = (*AUTHN_SETTINGS, ...)                  # rows of a program's settings table
    config = authn_config(settings, public_methods=("/pkg.Service/Health",))
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, Protocol

from jwt_authn.config import PUBLIC_GRPC_INFRA_METHODS, AuthnConfig, IssuerConfig, Policy
from secureroute.settings import (
    Setting,
    SettingsError,
    parse_bool,
    parse_csv,
    parse_duration,
    parse_existing_file,
    parse_int_between,
    parse_optional_str,
    parse_positive_duration,
    parse_str,
    parse_url,
)

__all__ = ["AUTHN_SETTINGS", "AuthnSettings", "authn_config"]


def _default(cls: type[Any], name: str) -> Any:
    """The default of a jwt_authn config field (the single source of each default)."""
    for field in fields(cls):
        if field.name == name:
            assert field.default is not MISSING, name
            return field.default
    raise AssertionError(name)


class AuthnSettings(Protocol):
    """The fields ``authn_config`` reads; each program's settings dataclass has them."""

    @property
    def issuer(self) -> str: ...
    @property
    def audience(self) -> tuple[str, ...]: ...
    @property
    def allow_any_audience(self) -> bool: ...
    @property
    def jwks_uri(self) -> str | None: ...
    @property
    def jwks_file(self) -> str | None: ...
    @property
    def allow_insecure_http(self) -> bool: ...
    @property
    def algorithms(self) -> tuple[str, ...]: ...
    @property
    def leeway(self) -> float: ...
    @property
    def require_at_jwt(self) -> bool: ...
    @property
    def roles_claim(self) -> str: ...
    @property
    def fetch_timeout(self) -> float: ...
    @property
    def refresh_interval(self) -> float: ...
    @property
    def cooldown(self) -> float: ...
    @property
    def max_staleness(self) -> float: ...
    @property
    def token_cache_size(self) -> int: ...
    @property
    def max_token_bytes(self) -> int: ...
    @property
    def realm(self) -> str: ...


AUTHN_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "issuer", "SECUREROUTE_ISSUER", parse_str, None, "the exact 'iss' of accepted tokens", required=True
    ),
    Setting(
        "audience",
        "SECUREROUTE_AUDIENCE",
        parse_csv,
        (),
        "accepted 'aud' values, comma-separated; required unless --allow-any-audience",
    ),
    Setting(
        "allow_any_audience",
        "SECUREROUTE_ALLOW_ANY_AUDIENCE",
        parse_bool,
        # RFC 8725 §3.9: skipping the audience check must be an explicit choice.
        False,
        "accept tokens for any audience (not recommended)",
        switch=True,
    ),
    Setting(
        "jwks_uri",
        "SECUREROUTE_JWKS_URI",
        parse_url,
        None,
        "JWKS URL; default: discovered from the issuer's /.well-known/openid-configuration",
    ),
    Setting(
        "jwks_file", "SECUREROUTE_JWKS_FILE", parse_existing_file, None, "local JWKS file instead of a URL"
    ),
    Setting(
        "allow_insecure_http",
        "SECUREROUTE_ALLOW_INSECURE_HTTP",
        parse_bool,
        # jwt_authn: plain http only on loopback unless explicitly allowed.
        _default(IssuerConfig, "allow_insecure_http"),
        "allow plain http issuer/JWKS URLs off loopback (never in production)",
        switch=True,
    ),
    Setting(
        "algorithms",
        "SECUREROUTE_ALGORITHMS",
        parse_csv,
        # jwt_authn's allowlist: every asymmetric JWS algorithm, never HMAC or "none".
        _default(IssuerConfig, "algorithms"),
        "accepted signature algorithms, comma-separated",
    ),
    Setting(
        "leeway",
        "SECUREROUTE_LEEWAY",
        parse_duration,
        # jwt_authn's default clock-skew tolerance.
        _default(IssuerConfig, "leeway_s"),
        "clock skew tolerated on exp/nbf/iat, seconds (at most 300)",
    ),
    Setting(
        "require_at_jwt",
        "SECUREROUTE_REQUIRE_AT_JWT",
        parse_bool,
        # Off: many issuers still send typ JWT; RFC 9068 §2.1 asks for at+jwt.
        _default(IssuerConfig, "require_access_token_type"),
        "require the header typ 'at+jwt' (RFC 9068 access tokens only)",
        switch=True,
    ),
    Setting(
        "roles_claim",
        "SECUREROUTE_ROLES_CLAIM",
        parse_str,
        _default(IssuerConfig, "roles_claim"),
        "claim holding roles; a dotted path reaches nested claims (realm_access.roles)",
    ),
    Setting(
        "fetch_timeout",
        "SECUREROUTE_FETCH_TIMEOUT",
        parse_positive_duration,
        # jose's default.
        _default(IssuerConfig, "fetch_timeout_s"),
        "timeout of each discovery/JWKS fetch, seconds",
    ),
    Setting(
        "refresh_interval",
        "SECUREROUTE_REFRESH_INTERVAL",
        parse_positive_duration,
        # jose's cacheMaxAge (10 min); a Cache-Control max-age from the issuer wins.
        _default(IssuerConfig, "refresh_interval_s"),
        "JWKS refresh period when the issuer sends no Cache-Control max-age, seconds",
    ),
    Setting(
        "cooldown",
        "SECUREROUTE_COOLDOWN",
        parse_positive_duration,
        # jose's cooldownDuration.
        _default(IssuerConfig, "cooldown_s"),
        "least time between two refreshes caused by unknown key ids, seconds",
    ),
    Setting(
        "max_staleness",
        "SECUREROUTE_MAX_STALENESS",
        parse_positive_duration,
        # 24 h: the last good key set outlives an issuer outage, but not forever.
        _default(IssuerConfig, "max_staleness_s"),
        "how long the last good key set keeps serving while the issuer is unreachable, seconds",
    ),
    Setting(
        "token_cache_size",
        "SECUREROUTE_TOKEN_CACHE_SIZE",
        parse_int_between(0, 10_000_000),
        _default(AuthnConfig, "token_cache_size"),
        "verified tokens remembered (LRU); 0 turns the cache off",
    ),
    Setting(
        "max_token_bytes",
        "SECUREROUTE_MAX_TOKEN_BYTES",
        parse_int_between(256, 64 * 1024),
        # 8 KiB, Envoy-like header budgets; real tokens are far smaller.
        _default(AuthnConfig, "max_token_bytes"),
        "largest token accepted before any parsing, bytes",
    ),
    Setting(
        "realm",
        "SECUREROUTE_REALM",
        parse_optional_str,
        _default(AuthnConfig, "realm"),
        "realm of the WWW-Authenticate challenge (RFC 6750 §3); empty leaves it out",
    ),
)


def authn_config(settings: AuthnSettings, *, public_methods: tuple[str, ...] = ()) -> AuthnConfig:
    """The jwt_authn config for ``settings``. Raises ``ValueError("setting: problem")``.

    ``public_methods`` are added to gRPC's health and reflection services, which are always public.
    """
    if settings.jwks_uri is not None and settings.jwks_file is not None:
        raise SettingsError("jwks_file: set jwks_uri or jwks_file, not both")
    issuer = IssuerConfig(
        issuer=settings.issuer,
        audiences=settings.audience,
        allow_any_audience=settings.allow_any_audience,
        jwks_uri=settings.jwks_uri,
        jwks_file=settings.jwks_file,
        allow_insecure_http=settings.allow_insecure_http,
        algorithms=settings.algorithms,
        leeway_s=settings.leeway,
        require_access_token_type=settings.require_at_jwt,
        roles_claim=settings.roles_claim,
        fetch_timeout_s=settings.fetch_timeout,
        refresh_interval_s=settings.refresh_interval,
        cooldown_s=settings.cooldown,
        max_staleness_s=settings.max_staleness,
    )
    return AuthnConfig(
        issuers=(issuer,),
        policy=Policy(public_methods=(*PUBLIC_GRPC_INFRA_METHODS, *public_methods)),
        token_cache_size=settings.token_cache_size,
        max_token_bytes=settings.max_token_bytes,
        realm=settings.realm,
    )
