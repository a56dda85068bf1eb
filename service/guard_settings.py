"""The bearer-token settings of a program embedding jwt_authn, named as jwt_authn's config fields.

Each field has the name of an ``IssuerConfig`` or ``AuthnConfig`` field (``DPoPConfig``'s as
``dpop_<field>``, but ``trusted_proxies``, the name operators know) and takes its default, bounds
and description from jwt_authn (``describe``), so ``authn_config`` builds the guard's config by name
and exposing a new jwt_authn knob is one line here. jwt_authn's own validation names the setting.

Usage:
    class Settings(AuthnSettings, ProgramSettings): ...
    config = authn_config(settings, public_methods=("/pkg.Service/Health",))
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Annotated, Any

from pydantic import Field

from jwt_authn.config import AuthnConfig, DPoPConfig, IssuerConfig, Policy, describe
from runtime.settings import (
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

_DOCS = {
    **{doc.name: doc for doc in (*describe(IssuerConfig), *describe(AuthnConfig))},
    **{f"dpop_{doc.name}": doc for doc in describe(DPoPConfig)},
}
_DOCS["trusted_proxies"] = _DOCS.pop("dpop_trusted_proxies")


def _guard(name: str, *, note: str = "", **extra: Any) -> Any:
    """The pydantic field of the guard's setting ``name``: jwt_authn's default, bounds and description."""
    doc = _DOCS[name]
    bounds = {key: getattr(doc, key) for key in ("ge", "le", "gt") if getattr(doc, key) is not None}
    default = ... if doc.default is MISSING else doc.default
    return Field(default, description=f"{doc.description}{note}", **{**bounds, **extra})


_LIST = " Comma-separated."


class AuthnSettings(SubSettings):
    """Who issues the accepted tokens, for whom, and how their keys are fetched and cached."""

    issuer: Text = _guard("issuer")
    # "audience" was its name before it took jwt_authn's; the benchmark and deployments still use it.
    audiences: Annotated[Csv, OldName("audience")] = _guard("audiences", note=_LIST)
    allow_any_audience: bool = _guard("allow_any_audience")
    # None: discovered from the issuer's /.well-known/openid-configuration.
    jwks_uri: Text | None = _guard("jwks_uri")
    jwks_file: ExistingFile | None = _guard("jwks_file")
    allow_insecure_http: bool = _guard("allow_insecure_http")
    algorithms: Csv = _guard("algorithms", note=_LIST)
    leeway_s: Seconds = _guard("leeway_s")
    require_access_token_type: bool = _guard("require_access_token_type")
    roles_claim: Text = _guard("roles_claim")
    fetch_timeout_s: PositiveSeconds = _guard("fetch_timeout_s")
    refresh_interval_s: PositiveSeconds = _guard("refresh_interval_s")
    refresh_wait_s: PositiveSeconds = _guard("refresh_wait_s")
    cooldown_s: PositiveSeconds = _guard("cooldown_s")
    max_staleness_s: PositiveSeconds = _guard("max_staleness_s")
    # Ours, above the guard's: ten million entries is a typo, not a cache.
    token_cache_size: int = _guard("token_cache_size", le=10_000_000)
    max_token_bytes: int = _guard("max_token_bytes")
    max_claims_depth: int = _guard("max_claims_depth")
    realm: str = _guard("realm")
    require_sender_constrained: bool = _guard("require_sender_constrained")
    trusted_proxies: Annotated[Networks, Repeatable("ADDRESS")] = _guard("trusted_proxies", note=_LIST)
    dpop_public_base_urls: Csv = _guard("dpop_public_base_urls", note=_LIST)
    dpop_max_proof_age_s: PositiveSeconds = _guard("dpop_max_proof_age_s")
    dpop_require_nonce: bool = _guard("dpop_require_nonce")


def authn_config(settings: AuthnSettings, *, public_methods: tuple[str, ...] = ()) -> AuthnConfig:
    """The jwt_authn config for ``settings``. Raises ``ValueError("setting: problem")``.

    ``public_methods`` are public beside gRPC's health and reflection services (jwt_authn's default).
    """

    def values(config: type[Any], prefix: str = "") -> dict[str, Any]:
        names = (field.name for field in fields(config))
        return {
            name: getattr(settings, prefix + name)
            for name in names
            if prefix + name in AuthnSettings.model_fields
        }

    return AuthnConfig(
        issuers=(IssuerConfig(**values(IssuerConfig)),),
        policy=Policy(public_methods=public_methods),
        dpop=DPoPConfig(**values(DPoPConfig, "dpop_"), trusted_proxies=settings.trusted_proxies),
        **values(AuthnConfig),
    )
