"""The bearer-token settings of a program embedding jwt_authn, named as jwt_authn's config fields.

Each field has the name of an ``IssuerConfig`` or ``AuthnConfig`` field and that field's default,
so ``authn_config`` builds the guard's config by name, with no mapping to keep in step: exposing
a new jwt_authn knob is one field here. jwt_authn's own validation runs there and names the setting.

DPoP (``DPoPConfig``) fields are named ``dpop_<field>``, except ``trusted_proxies`` (the name the
operators know from the split deployment).

Usage:
    class Settings(AuthnSettings, ProgramSettings): ...
    config = authn_config(settings, public_methods=("/pkg.Service/Health",))
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Annotated, Any

from pydantic import Field

from jwt_authn.config import AuthnConfig, DPoPConfig, IssuerConfig, Policy
from secureroute.settings import (
    Csv,
    ExistingFile,
    Networks,
    OldName,
    PositiveSeconds,
    Repeatable,
    Seconds,
    SubSettings,
    Text,
)

__all__ = ["AuthnSettings", "authn_config"]


def _default(name: str) -> Any:
    """The default of a jwt_authn config field (the single source of each default)."""
    for field in (*fields(IssuerConfig), *fields(AuthnConfig)):
        if field.name == name and field.default is not MISSING:
            return field.default
    for field in fields(DPoPConfig):
        if name in (field.name, f"dpop_{field.name}") and field.default is not MISSING:
            return field.default
    raise AssertionError(name)


_DPOP_FIELDS = {field.name for field in fields(DPoPConfig)}


def _dpop_field(name: str) -> str | None:
    """The ``DPoPConfig`` field a setting sets: ``dpop_<field>``, or ``trusted_proxies``."""
    if name == "trusted_proxies":
        return name
    field = name.removeprefix("dpop_")
    return field if name.startswith("dpop_") and field in _DPOP_FIELDS else None


class AuthnSettings(SubSettings):
    """Who issues the accepted tokens, for whom, and how their keys are fetched and cached."""

    issuer: Text = Field(description="the exact 'iss' of accepted tokens")
    # "audience" was its name before it took jwt_authn's; the benchmark and deployments still use it.
    audiences: Annotated[Csv, OldName("audience")] = Field(
        _default("audiences"),
        description="accepted 'aud' values, comma-separated; required unless allow_any_audience",
    )
    # RFC 8725 §3.9: skipping the audience check must be an explicit choice.
    allow_any_audience: bool = Field(
        _default("allow_any_audience"), description="accept tokens for any audience (not recommended)"
    )
    jwks_uri: Text | None = Field(
        None, description="JWKS URL; default: discovered from the issuer's /.well-known/openid-configuration"
    )
    jwks_file: ExistingFile | None = Field(None, description="local JWKS file instead of a URL")
    # jwt_authn: plain http only on loopback unless explicitly allowed.
    allow_insecure_http: bool = Field(
        _default("allow_insecure_http"),
        description="allow plain http issuer/JWKS URLs off loopback (never in production)",
    )
    # jwt_authn's allowlist: every asymmetric JWS algorithm, never HMAC or "none".
    algorithms: Csv = Field(
        _default("algorithms"), description="accepted signature algorithms, comma-separated"
    )
    leeway_s: Seconds = Field(
        _default("leeway_s"), le=300, description="clock skew tolerated on exp/nbf/iat, seconds (at most 300)"
    )
    # Off: many issuers still send typ JWT; RFC 9068 §2.1 asks for at+jwt.
    require_access_token_type: bool = Field(
        _default("require_access_token_type"),
        description="require the header typ 'at+jwt' (RFC 9068 access tokens only)",
    )
    roles_claim: Text = Field(
        _default("roles_claim"),
        description="claim holding roles; a dotted path reaches nested claims (realm_access.roles)",
    )
    # jose's default.
    fetch_timeout_s: PositiveSeconds = Field(
        _default("fetch_timeout_s"), description="timeout of each discovery/JWKS fetch, seconds"
    )
    # jose's cacheMaxAge (10 min); a Cache-Control max-age from the issuer wins.
    refresh_interval_s: PositiveSeconds = Field(
        _default("refresh_interval_s"),
        description="JWKS refresh period when the issuer sends no Cache-Control max-age, seconds",
    )
    # jose's cooldownDuration.
    cooldown_s: PositiveSeconds = Field(
        _default("cooldown_s"),
        description="least time between two refreshes caused by unknown key ids, seconds",
    )
    # Well below any caller's deadline (the facade's backend timeout is 5 s): a slow issuer costs
    # a prompt 401, and the fetch goes on in the background.
    refresh_wait_s: PositiveSeconds = Field(
        _default("refresh_wait_s"),
        description="longest a request waits for a key refresh caused by an unknown key id, seconds",
    )
    # 24 h: the last good key set outlives an issuer outage, but not forever.
    max_staleness_s: PositiveSeconds = Field(
        _default("max_staleness_s"),
        description="how long the last good key set keeps serving while the issuer is unreachable, seconds",
    )
    token_cache_size: int = Field(
        _default("token_cache_size"),
        ge=0,
        le=10_000_000,
        description="verified tokens remembered (LRU); 0 turns the cache off",
    )
    # 8 KiB, Envoy-like header budgets; real tokens are far smaller.
    max_token_bytes: int = Field(
        _default("max_token_bytes"), description="largest token accepted before any parsing, bytes"
    )
    # Real tokens nest 3 levels; 16 keeps every accepted claim set renderable as a protobuf Struct.
    max_claims_depth: int = Field(
        _default("max_claims_depth"),
        ge=1,
        le=32,
        description="deepest nesting of objects and arrays in a token's claims; deeper tokens are refused",
    )
    realm: str = Field(
        _default("realm"),
        description="realm of the WWW-Authenticate challenge (RFC 6750 §3); empty leaves it out",
    )
    # Sender-constrained tokens (DPoP, RFC 9449; certificate-bound, RFC 8705). A bound token always
    # needs its proof or certificate; this refuses unbound ones too. Off: both kinds pass.
    require_sender_constrained: bool = Field(
        _default("require_sender_constrained"),
        description="accept only tokens bound to a DPoP key (cnf.jkt) or a client certificate (cnf x5t#S256)",
    )
    # Nobody by default: a client must never choose the URL its proof is checked against.
    trusted_proxies: Annotated[Networks, Repeatable("ADDRESS")] = Field(
        _default("trusted_proxies"),
        description="peers (IP addresses or networks) allowed to forward a request's method and URL "
        "for its DPoP proof (dpop-htm/dpop-htu): the split deployment's facade",
    )
    dpop_public_base_urls: Csv = Field(
        _default("public_base_urls"),
        description="URLs clients reach this server at (https://api.example.com): a DPoP proof's htu is "
        "one of them plus the path; empty: the request's own URL (gRPC: its scheme and path)",
    )
    # RFC 9449 §11.1 asks for a short window; 60 s is Spring Security's default.
    dpop_max_proof_age_s: PositiveSeconds = Field(
        _default("max_proof_age_s"),
        description="oldest DPoP proof accepted (its iat), and how long its jti is remembered, seconds",
    )
    # Off, as in RFC 9449 §8 (optional).
    dpop_require_nonce: bool = Field(
        _default("require_nonce"),
        description="require a server nonce in every DPoP proof (DPoP-Nonce, use_dpop_nonce)",
    )


def _matching(cls: type[Any], values: dict[str, Any]) -> dict[str, Any]:
    names = {field.name for field in fields(cls)}
    return {name: value for name, value in values.items() if name in names}


def authn_config(settings: AuthnSettings, *, public_methods: tuple[str, ...] = ()) -> AuthnConfig:
    """The jwt_authn config for ``settings``. Raises ``ValueError("setting: problem")``.

    ``public_methods`` are public beside gRPC's health and reflection services (jwt_authn's default).
    """
    values = {name: getattr(settings, name) for name in AuthnSettings.model_fields}
    dpop = {field: values[name] for name in values if (field := _dpop_field(name)) is not None}
    return AuthnConfig(
        issuers=(IssuerConfig(**_matching(IssuerConfig, values)),),
        policy=Policy(public_methods=public_methods),
        dpop=DPoPConfig(**dpop),
        **_matching(AuthnConfig, values),
    )
