"""A bounded LRU of verified tokens, so a token seen again costs no signature check.

Entries are keyed by a BLAKE2b digest of the token, not the token itself: memory stays small
whatever the token size, and no token text sits in the cache. A hit still checks the token's
time window against the clock; entries die with their key when it leaves the key set.

Usage:
    cache = TokenCache(max_entries=10_000)
    cache.put(token, VerifiedToken(principal, issuer, key_id, valid_from=0, valid_until=exp + leeway))
    hit = cache.get(token)
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from jwt_authn.principal import Principal

__all__ = ["TokenCache", "VerifiedToken"]


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    principal: Principal
    issuer: str
    #: ``VerificationKey.key_id`` of the key that verified the signature.
    key_id: str | None
    #: The token is valid for valid_from <= now <= valid_until (leeway included).
    valid_from: float
    valid_until: float


class TokenCache:
    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, VerifiedToken] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.blake2b(token.encode(), digest_size=20).digest()

    def get(self, token: str) -> VerifiedToken | None:
        if not self._max_entries:
            return None
        digest = self._digest(token)
        entry = self._entries.get(digest)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(digest)
        self.hits += 1
        return entry

    def put(self, token: str, entry: VerifiedToken) -> None:
        if not self._max_entries:
            return
        self._entries[self._digest(token)] = entry
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def drop_keys(self, issuer: str, key_ids: frozenset[str]) -> int:
        """Forget every entry verified by one of ``key_ids`` of ``issuer``; returns how many."""
        stale = [d for d, e in self._entries.items() if e.issuer == issuer and e.key_id in key_ids]
        for digest in stale:
            del self._entries[digest]
        return len(stale)
