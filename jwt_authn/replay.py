"""Remember the DPoP proofs already accepted, so none is accepted twice (RFC 9449 §11.1).

A proof is remembered by a digest of its key's thumbprint and its ``jti`` until it could no
longer be accepted anyway (its ``iat`` too old): memory is bounded by the proof window.

``MemoryReplayStore`` is the default, one per Authenticator (one process). Bounded in total and
per client key, and it never forgets a live entry to make room, which would let that proof be
replayed. When it is full:

- the entry that was stored first (in total, or of that client key when the key has
  ``max_entries_per_key`` live proofs) is dropped, and the store raises a *floor* (for the whole
  store, or for that key) to that entry's expiry: from then on any proof expiring at or before
  the floor is refused (``dpop_replay_store_full``), because it may be one of those forgotten.
  In effect a flood shortens the accepted proof age to what the store can cover: fresh proofs
  (``iat`` now, as clients make them) still pass, no proof is ever accepted twice, and one busy
  key shortens its own window, not everyone's. Memory stays flat whatever the number of proofs.

For several replicas use a shared store: ``jwt_authn.replay_redis.RedisReplayStore``
(``pip install 'jwt-authn[redis]'``).

Usage:
    store = MemoryReplayStore(max_entries=100_000, max_entries_per_key=10_000)
    await store.remember(proof.replay_key, proof.jkt, proof.expires_at, now)  # raises on a replay
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol, runtime_checkable

from jwt_authn.errors import Unauthenticated

__all__ = ["MemoryReplayStore", "ReplayStore", "ReplayStoreUnavailable"]


class ReplayStoreUnavailable(Unauthenticated):
    """The replay store cannot answer (Redis down): the proof is refused, never waved through."""

    def __init__(self, detail: str) -> None:
        super().__init__("dpop_replay_store_unavailable", detail)


@runtime_checkable
class ReplayStore(Protocol):
    #: False while the store cannot answer (for readiness checks and metrics).
    available: bool

    async def remember(self, replay_key: bytes, jkt: str, expires_at: float, now: float) -> None:
        """Record a proof; raise ``Unauthenticated("dpop_proof_replayed")`` if it was seen within
        its window, ``dpop_replay_store_full`` or ``ReplayStoreUnavailable`` when it cannot tell."""
        ...

    async def close(self) -> None: ...


class MemoryReplayStore:
    """In-process replay store, bounded as the module docstring says."""

    available = True

    def __init__(self, *, max_entries: int, max_entries_per_key: int) -> None:
        self._max_entries = max_entries
        self._max_per_key = max_entries_per_key
        #: Live entries: replay key -> (expires_at, jkt).
        self._seen: dict[bytes, tuple[float, str]] = {}
        #: Insertion order, in total and per client key, for expiry and eviction. Entries that
        #: left by the other route stay behind until skipped or compacted (``_compact``).
        self._order: deque[bytes] = deque()
        self._per_key: dict[str, deque[bytes]] = {}
        self._counts: dict[str, int] = {}
        #: Proofs expiring at or before this instant may have been forgotten: refused. One floor
        #: for the whole store, one per key that reached its bound.
        self.floor = -math.inf
        self._key_floors: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def _forget(self, replay_key: bytes) -> float:
        expires_at, jkt = self._seen.pop(replay_key)
        left = self._counts[jkt] - 1
        if left:
            self._counts[jkt] = left
        else:
            del self._counts[jkt]
            del self._per_key[jkt]
        return expires_at

    def _pop_live(self, order: deque[bytes]) -> bytes | None:
        """The oldest entry of ``order`` still live (skipping those that left by another route)."""
        while order:
            replay_key = order.popleft()
            if replay_key in self._seen:
                return replay_key
        return None

    def _expire(self, now: float) -> None:
        # Entries leave in insertion order; one whose window ended but sits behind a younger one
        # waits (and counts) until it reaches the front: bounded all the same.
        order = self._order
        while order:
            entry = self._seen.get(order[0])
            if entry is not None and entry[0] >= now:
                break
            replay_key = order.popleft()
            if entry is not None:
                self._forget(replay_key)
        if len(self._key_floors) > 1024:
            # A floor in the past refuses nothing the iat check would not.
            self._key_floors = {k: f for k, f in self._key_floors.items() if f >= now and f > self.floor}

    def _compact(self, jkt: str) -> None:
        # Bounded memory: the orders drop entries that left by the other route once they are
        # mostly such entries (amortised: each compaction at least halves the order).
        if len(self._order) > 2 * len(self._seen) + 64:
            self._order = deque(k for k in self._order if k in self._seen)
        order = self._per_key.get(jkt)
        if order is not None and len(order) > 2 * self._counts[jkt] + 64:
            self._per_key[jkt] = deque(k for k in order if k in self._seen)

    async def remember(self, replay_key: bytes, jkt: str, expires_at: float, now: float) -> None:
        self._expire(now)
        if replay_key in self._seen:
            raise Unauthenticated("dpop_proof_replayed", "this proof's jti was seen before")
        if expires_at <= self.floor or expires_at <= self._key_floors.get(jkt, -math.inf):
            raise Unauthenticated("dpop_replay_store_full", "proof older than what the full store covers")
        if self._counts.get(jkt, 0) >= self._max_per_key:
            oldest = self._pop_live(self._per_key[jkt])
            if oldest is not None:
                self._key_floors[jkt] = max(self._key_floors.get(jkt, -math.inf), self._forget(oldest))
        while len(self._seen) >= self._max_entries:
            oldest = self._pop_live(self._order)
            if oldest is None:  # pragma: no cover - every live entry is in the order
                break
            self.floor = max(self.floor, self._forget(oldest))
        self._seen[replay_key] = (expires_at, jkt)
        self._order.append(replay_key)
        self._per_key.setdefault(jkt, deque()).append(replay_key)
        self._counts[jkt] = self._counts.get(jkt, 0) + 1
        self._compact(jkt)

    async def close(self) -> None:
        self._seen.clear()
        self._order.clear()
        self._per_key.clear()
        self._counts.clear()
        self._key_floors.clear()
