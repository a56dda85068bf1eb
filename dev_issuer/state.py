"""The issuer's per-application state, shared by the handlers through one ``AppKey``.

Usage:
    state = request.app[STATE]
    key = state.keys.signing_key("RS256")
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from dev_issuer.config import IssuerConfig
from dev_issuer.dpop_proof import SeenProofs
from dev_issuer.grants import AuthorizationCode, ExpiringStore, PendingLogin
from dev_issuer.keys import KeyStore

__all__ = ["STATE", "IssuerState"]


@dataclass(frozen=True, slots=True)
class IssuerState:
    config: IssuerConfig
    keys: KeyStore
    logins: ExpiringStore[PendingLogin]
    codes: ExpiringStore[AuthorizationCode]
    #: DPoP proofs accepted at the token endpoint, against replay.
    seen_proofs: SeenProofs

    @classmethod
    def open(cls, config: IssuerConfig) -> IssuerState:
        """Load (or create) the keys and start with no pending logins, codes or seen proofs."""
        return cls(
            config=config,
            keys=KeyStore.open(config.state_dir, clock=config.clock, grace_s=config.rotation_grace_s),
            logins=ExpiringStore(clock=config.clock, ttl_s=config.login_ttl_s),
            codes=ExpiringStore(clock=config.clock, ttl_s=config.code_ttl_s),
            seen_proofs=SeenProofs(),
        )


STATE = web.AppKey("dev_issuer_state", IssuerState)
