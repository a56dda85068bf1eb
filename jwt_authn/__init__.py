"""jwt_authn: an embeddable OAuth 2.0 bearer-token guard for gRPC and aiohttp services.

Validates JWT access tokens (RFC 9068) with jwcrypto against the issuer's JWKS (OIDC
discovery, cached, refreshed, rate limited, surviving issuer outages), and hands the verified
principal to handlers. Imports only the standard library, grpcio, jwcrypto and aiohttp.

Usage:
    from jwt_authn import AsyncAuthInterceptor, Authenticator, AuthnConfig, IssuerConfig, Policy
    from jwt_authn import current_principal, recommended_server_options

    config = AuthnConfig(
        issuers=(IssuerConfig(issuer="https://idp.example.com", audiences=("orders",)),),
        policy=Policy(public_methods=("/shop.v1.Orders/Ping",)),  # health and reflection too
    )
    authenticator = Authenticator(config)
    server = grpc.aio.server(
        interceptors=[AsyncAuthInterceptor(authenticator)], options=recommended_server_options(config)
    )
    await authenticator.start()
"""

from jwt_authn.aiohttp import authn_middleware, operation
from jwt_authn.authenticator import Authenticator, challenge, dpop_challenge
from jwt_authn.config import (
    DEFAULT_ALGORITHMS,
    PUBLIC_GRPC_INFRA_METHODS,
    AuthnConfig,
    DPoPConfig,
    IssuerConfig,
    Policy,
    Requirement,
)
from jwt_authn.dpop_client import DPoPCallCredentials, DPoPKey, DPoPNonces, dpop_headers, dpop_request
from jwt_authn.errors import AuthnError, KeySetUnavailable, PermissionDenied, Unauthenticated
from jwt_authn.grpc_aio import AsyncAuthInterceptor, recommended_server_options
from jwt_authn.grpc_sync import SyncAuthenticator, SyncAuthInterceptor
from jwt_authn.observer import OUTCOME_OK, AuthnObserver, AuthnVerdict, TracingObserver
from jwt_authn.policy_check import check_policy
from jwt_authn.principal import Principal, current_principal
from jwt_authn.replay import MemoryReplayStore, ReplayStore, ReplayStoreUnavailable
from jwt_authn.sender import (
    DPOP_HTM_METADATA,
    DPOP_HTU_METADATA,
    DPOP_METADATA,
    DPOP_NONCE_METADATA,
    ProofTarget,
    SenderContext,
    certificate_thumbprint,
)

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DPOP_HTM_METADATA",
    "DPOP_HTU_METADATA",
    "DPOP_METADATA",
    "DPOP_NONCE_METADATA",
    "OUTCOME_OK",
    "PUBLIC_GRPC_INFRA_METHODS",
    "AsyncAuthInterceptor",
    "Authenticator",
    "AuthnConfig",
    "AuthnError",
    "AuthnObserver",
    "AuthnVerdict",
    "DPoPCallCredentials",
    "DPoPConfig",
    "DPoPKey",
    "DPoPNonces",
    "IssuerConfig",
    "KeySetUnavailable",
    "MemoryReplayStore",
    "PermissionDenied",
    "Policy",
    "Principal",
    "ProofTarget",
    "ReplayStore",
    "ReplayStoreUnavailable",
    "Requirement",
    "SenderContext",
    "SyncAuthInterceptor",
    "SyncAuthenticator",
    "TracingObserver",
    "Unauthenticated",
    "authn_middleware",
    "certificate_thumbprint",
    "challenge",
    "check_policy",
    "current_principal",
    "dpop_challenge",
    "dpop_headers",
    "dpop_request",
    "operation",
    "recommended_server_options",
]
