"""A bounded LRU of verified tokens, so a token seen again costs no signature check.

Entries are keyed by a BLAKE2b-256 digest, not by the token: memory stays small whatever the
token size, and no token text sits in the cache. ``Authenticator.verify`` digests the token;
``Authenticator.authenticate`` digests the ``authorization`` value that carries it, as sent, so
a value seen before skips extraction too. A hit still checks the token's time window against
the clock; entries die with their key when it leaves the key set.

Usage:
    cache = TokenCache(max_entries=10_000)
    digest = cache.digest(token)                 # once per request: get and put both take it
    hit = cache.get(digest)
    cache.put(digest, VerifiedToken(principal, issuer, key_id, valid_from=0, valid_until=exp + leeway))
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import NamedTuple

from jwt_authn.principal import Principal
from jwt_authn.verifier import Binding

__all__ = ["TokenCache", "VerifiedToken"]


class VerifiedToken(NamedTuple):
    """What a verified token proved, and until when. (A NamedTuple: built on every cold check,
    and cheaper to build than a frozen dataclass.)"""

    principal: Principal
    issuer: str
    #: ``VerificationKey.key_id`` of the key that verified the signature.
    key_id: str | None
    #: The token is valid for valid_from <= now <= valid_until (leeway included).
    valid_from: float
    valid_until: float
    #: What the token's ``cnf`` binds it to (None: a bearer token). Only the token's verification
    #: is remembered: a bound token needs its fresh proof or its certificate on every call.
    binding: Binding | None = None


class TokenCache:
    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, VerifiedToken] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def digest(text: str) -> bytes:
        """The cache key of ``text`` (a token, or the authorization value that carries one):
        BLAKE2b-256, computed on every request.

        In a tight loop OpenSSL's SHA-256 wins, but inside the busy service, whose other work keeps
        the CPU caches cold, BLAKE2b (built into CPython, no OpenSSL dispatch) is the cheaper one
        (timed inside a running gRPC server, not in a micro-benchmark).
        """
        return hashlib.blake2b(text.encode(), digest_size=32).digest()

    def get(self, digest: bytes) -> VerifiedToken | None:
        if not self._max_entries:
            return None
        entry = self._entries.get(digest)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(digest)
        self.hits += 1
        return entry

    def put(self, digest: bytes, entry: VerifiedToken) -> None:
        if not self._max_entries:
            return
        self._entries[digest] = entry
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def drop_keys(self, issuer: str, key_ids: frozenset[str]) -> int:
        """Forget every entry verified by one of ``key_ids`` of ``issuer``; returns how many."""
        stale = [d for d, e in self._entries.items() if e.issuer == issuer and e.key_id in key_ids]
        for digest in stale:
            del self._entries[digest]
        return len(stale)
