"""The gRPC service's settings: one table, one frozen dataclass, and the jwt_authn config built from it.

Usage:
    settings = load_service_settings(["--issuer", "https://idp.example.com/", "--audience", "secureroute"])
    config = authn_config(settings)  # raises ValueError("audience: ...") on a bad combination
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jwt_authn.config import (
    DEFAULT_ALGORITHMS,
    PUBLIC_GRPC_INFRA_METHODS,
    AuthnConfig,
    IssuerConfig,
    Policy,
)
from secureroute.settings import (
    ListenAddress,
    Setting,
    load_settings,
    parse_bool,
    parse_csv,
    parse_duration,
    parse_listen,
    parse_log_level,
    parse_str,
)

__all__ = [
    "HEALTH_METHOD",
    "PROG",
    "SERVICE_SETTINGS",
    "ServiceSettings",
    "authn_config",
    "load_service_settings",
]

PROG = "secureroute-service"
#: Our own Health RPC answers load balancers and the facade's /health without credentials.
HEALTH_METHOD = "/secureroute.v1.SecureRouteService/Health"


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceSettings:
    """Everything ``python -m service`` can be told. Field names are the setting names."""

    listen: ListenAddress
    issuer: str
    audience: tuple[str, ...]
    allow_any_audience: bool
    jwks_uri: str | None
    jwks_file: str | None
    algorithms: tuple[str, ...]
    leeway: float
    grace_period: float
    log_level: str


def _parse_existing_file(value: object) -> str:
    path = parse_str(value)
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path!r}")
    return path


SERVICE_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "listen",
        "SECUREROUTE_GRPC_LISTEN",
        parse_listen,
        # All interfaces, gRPC's conventional port.
        ListenAddress("::", 50051),
        "address to serve gRPC on, host:port ([::]:port for IPv6, port 0 picks a free port)",
    ),
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
        parse_str,
        None,
        "JWKS URL; default: discovered from the issuer's /.well-known/openid-configuration",
    ),
    Setting(
        "jwks_file", "SECUREROUTE_JWKS_FILE", _parse_existing_file, None, "local JWKS file instead of a URL"
    ),
    Setting(
        "algorithms",
        "SECUREROUTE_ALGORITHMS",
        parse_csv,
        # jwt_authn's allowlist: every asymmetric JWS algorithm, never HMAC or "none".
        DEFAULT_ALGORITHMS,
        "accepted signature algorithms, comma-separated",
    ),
    # jwt_authn's default clock-skew tolerance.
    Setting(
        "leeway", "SECUREROUTE_LEEWAY", parse_duration, 30.0, "clock skew tolerated on exp/nbf/iat, seconds"
    ),
    Setting(
        "grace_period",
        "SECUREROUTE_GRACE_PERIOD",
        parse_duration,
        # Well inside Kubernetes' default 30 s terminationGracePeriodSeconds.
        10.0,
        "on SIGTERM/SIGINT, how long in-flight RPCs may still run, seconds",
    ),
    Setting("log_level", "SECUREROUTE_LOG_LEVEL", parse_log_level, "INFO", "DEBUG, INFO, WARNING or ERROR"),
)


def load_service_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> ServiceSettings:
    """Read flags, env vars and the optional TOML file. Raises ``SettingsError``."""
    return load_settings(
        ServiceSettings,
        SERVICE_SETTINGS,
        prog=PROG,
        description="The secureroute gRPC service: Health is public, SecureRoute needs a bearer token.",
        argv=argv,
        environ=environ,
    )


def authn_config(settings: ServiceSettings) -> AuthnConfig:
    """The jwt_authn config for these settings. Raises ``ValueError("setting: problem")``."""
    issuer = IssuerConfig(
        issuer=settings.issuer,
        audiences=settings.audience,
        allow_any_audience=settings.allow_any_audience,
        jwks_uri=settings.jwks_uri,
        jwks_file=settings.jwks_file,
        algorithms=settings.algorithms,
        leeway_s=settings.leeway,
    )
    return AuthnConfig(
        issuers=(issuer,),
        policy=Policy(public_methods=(*PUBLIC_GRPC_INFRA_METHODS, HEALTH_METHOD)),
    )
