"""The issuer's per-application state, shared by the handlers through one ``AppKey``.

Usage:
    state = request.app[STATE]
    key = state.keys.signing_key("RS256")
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from dev_issuer.config import IssuerConfig
from dev_issuer.grants import AuthorizationCode, ExpiringStore, PendingLogin
from dev_issuer.keys import KeyStore

__all__ = ["STATE", "IssuerState"]


@dataclass(frozen=True, slots=True)
class IssuerState:
    config: IssuerConfig
    keys: KeyStore
    logins: ExpiringStore[PendingLogin]
    codes: ExpiringStore[AuthorizationCode]

    @classmethod
    def open(cls, config: IssuerConfig) -> IssuerState:
        """Load (or create) the keys and start with no pending logins or codes."""
        return cls(
            config=config,
            keys=KeyStore.open(config.state_dir, clock=config.clock, grace_s=config.rotation_grace_s),
            logins=ExpiringStore(clock=config.clock, ttl_s=config.login_ttl_s),
            codes=ExpiringStore(clock=config.clock, ttl_s=config.code_ttl_s),
        )


STATE = web.AppKey("dev_issuer_state", IssuerState)
