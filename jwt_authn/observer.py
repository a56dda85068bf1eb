"""A hook for metrics: told the outcome of every authentication, without jwt_authn knowing who listens.

jwt_authn stays free of any metrics library: the embedding service implements this protocol
(a Prometheus counter, a StatsD client, a test double) and passes it to the Authenticator.
Counters that are cheaper to read than to push stay plain attributes, read at scrape time:
``authenticator.token_cache.hits`` / ``.misses`` and, per issuer,
``authenticator.key_sets[iss].refresh_successes`` / ``.refresh_failures`` / ``.age_s`` /
``.key_set``.

``on_outcome`` runs on the request path: keep it to a counter increment.

Usage:
    class CountingObserver:
        def on_outcome(self, reason: str) -> None:
            counts[reason] += 1

    authenticator = Authenticator(config, observer=CountingObserver())
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["OUTCOME_OK", "AuthnObserver"]

#: The outcome reported for a request that passed; failures report ``AuthnError.reason``.
OUTCOME_OK = "ok"


class AuthnObserver(Protocol):
    def on_outcome(self, reason: str) -> None:
        """``"ok"``, or the failure's short stable reason (``missing_token``, ``token_expired``...)."""
        ...
