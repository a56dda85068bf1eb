"""Hooks for metrics and traces: told the outcome of every authentication, and of every key fetch,
without jwt_authn knowing who listens.

jwt_authn stays free of any metrics or tracing library: the embedding service implements these
protocols (a Prometheus counter, an OpenTelemetry tracer, a test double) and passes the object to
the Authenticator as its ``observer``. Counters that are cheaper to read than to push stay plain
attributes, read at scrape time: ``authenticator.token_cache.hits`` / ``.misses`` and, per issuer,
``authenticator.key_sets[iss].refresh_successes`` / ``.refresh_failures`` / ``.age_s`` /
``.key_set``.

``AuthnObserver.on_outcome`` runs on the request path: keep it to a counter increment. An observer
that also has the two methods of ``TracingObserver`` is told more: the verdict of every
authentication (result, reason, issuer, key id, subject; never the token, never other claims) and
a context manager around every key-set refresh and every discovery or JWKS fetch (the fetch's
exception, if any, passes through it). The Authenticator checks this once, at construction; an
observer without them costs one ``None`` test per request, no observer costs the same.

Usage:
    class CountingObserver:
        def on_outcome(self, reason: str) -> None:
            counts[reason] += 1

    authenticator = Authenticator(config, observer=CountingObserver())
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["OUTCOME_OK", "AuthnObserver", "AuthnVerdict", "TracingObserver"]

#: The outcome reported for a request that passed; failures report ``AuthnError.reason``.
OUTCOME_OK = "ok"

#: The longest ``kid`` a verdict repeats: a rejected token's header is the caller's text.
MAX_VERDICT_KID_CHARS = 64


class AuthnObserver(Protocol):
    def on_outcome(self, reason: str) -> None:
        """``"ok"``, or the failure's short stable reason (``missing_token``, ``token_expired``...)."""
        ...


@dataclass(frozen=True, slots=True)
class AuthnVerdict:
    """What a trace may say about one authentication: never the token, no claim but ``sub``."""

    #: ``"ok"``, or the error's class: ``"unauthenticated"``, ``"permission_denied"``,
    #: ``"key_set_unavailable"``.
    result: str
    #: ``"ok"`` or the failure's ``AuthnError.reason``.
    reason: str
    #: The configured issuer of the token; None when the token names none of them.
    issuer: str | None = None
    #: The key that verified the token (``kid#jkt:thumbprint``); for a rejected token that got as
    #: far as its header, the ``kid`` it names (cut to ``MAX_VERDICT_KID_CHARS``).
    key_id: str | None = None
    #: The verified token's ``sub``; None for a rejection.
    subject: str | None = None


@runtime_checkable
class TracingObserver(AuthnObserver, Protocol):
    def on_verdict(self, verdict: AuthnVerdict) -> None:
        """Called after ``on_outcome``, in the caller's context (its current span, say)."""
        ...

    def key_fetch(self, issuer: str, step: str, url: str) -> AbstractContextManager[object]:
        """Entered around each ``step`` of a key-set load: ``"refresh"`` (one load of the key set,
        ``url`` the source's label) and, within it, each ``"discovery"`` or ``"jwks"`` GET. An
        on-demand refresh runs in a task copied from the request's context that caused it."""
        ...
