"""The verified caller, and where handlers find it.

The interceptor sets the principal in a ``ContextVar`` for the duration of the handler;
handlers read it with ``current_principal()`` instead of re-parsing the token.

Usage:
    from jwt_authn import current_principal

    async def SecureRoute(self, request, context):
        caller = current_principal()
        return Reply(subject=caller.subject)
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Principal", "current_principal", "principal_var"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who the verified token speaks for."""

    subject: str
    issuer: str
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    #: Unix time after which the token is no longer valid (None when it carries no ``exp``).
    expires_at: float | None = None


principal_var: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "jwt_authn_principal", default=None
)


def current_principal() -> Principal:
    """The principal of the request being handled.

    Raises ``LookupError`` when called outside an authenticated handler (for example in an
    anonymous method), so a missing check can never pass silently.
    """
    principal = principal_var.get()
    if principal is None:
        raise LookupError("no authenticated principal in this context (is the method public?)")
    return principal
