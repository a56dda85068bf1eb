"""Short-lived, single-use records: pending logins and authorization codes.

Both live in memory only (a restart simply voids them), expire by the injected clock, and
are bounded so a loop of requests cannot grow the issuer without limit.

Usage:
    codes: ExpiringStore[AuthorizationCode] = ExpiringStore(clock=time.time, ttl_s=60)
    code = codes.put(record)
    record = codes.take(code)        # None when unknown, expired or already taken
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["AuthorizationCode", "ExpiringStore", "PendingLogin"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class PendingLogin:
    """An authorization request that passed every check and waits for the user at the login page."""

    client_id: str
    redirect_uri: str
    state: str | None
    scopes: tuple[str, ...]
    audience: str
    code_challenge: str
    nonce: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthorizationCode:
    """What a code stands for; bound to the client, redirect URI and PKCE challenge (RFC 6749 §4.1.3)."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    subject: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    audience: str
    nonce: str | None


class ExpiringStore(Generic[T]):
    """Random ids to values, each valid for ``ttl_s`` and taken at most once."""

    def __init__(self, *, clock: Callable[[], float], ttl_s: float, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def put(self, value: T) -> str:
        """Store ``value`` and return its new random id (256 bits: unguessable)."""
        self._evict()
        key = secrets.token_urlsafe(32)
        self._entries[key] = (self._clock() + self._ttl_s, value)
        return key

    def peek(self, key: str) -> T | None:
        """The live value, left in place."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def take(self, key: str) -> T | None:
        """Remove the entry and return it if it was still live: a second call always gets None."""
        entry = self._entries.pop(key, None)
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self) -> None:
        now = self._clock()
        # Entries are inserted in expiry order (one ttl per store), so expired ones are at the front.
        while self._entries and next(iter(self._entries.values()))[0] <= now:
            self._entries.popitem(last=False)
        while len(self._entries) >= self._max_entries:
            self._entries.popitem(last=False)
