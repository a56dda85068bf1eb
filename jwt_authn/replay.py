"""Remember the DPoP proofs already accepted, so none is accepted twice (RFC 9449 §11.1).

A proof is remembered by a digest of its key's thumbprint and its ``jti`` until it could no
longer be accepted anyway (its ``iat`` too old): memory is bounded by the proof window.

``MemoryReplayStore`` is the default, one per Authenticator (one process). Bounded in total and
per client key, and it never forgets a live entry to make room, which would let that proof be
replayed. When it is full:

- per key: a client key with ``max_entries_per_key`` live proofs gets ``dpop_replay_store_full``
  until some expire (one key cannot take the store from everyone else);
- in total: the entry that was stored first is dropped and the store raises its *floor* to that
  entry's expiry: from then on any proof expiring at or before the floor is refused
  (``dpop_replay_store_full``), because it may be one of those forgotten. In effect a flood
  shortens the accepted proof age to what the store can cover; fresh proofs still pass and no
  proof is ever accepted twice. Memory stays flat whatever the number of proofs.

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
        #: Insertion order, for expiry and for eviction when full.
        self._order: deque[bytes] = deque()
        self._per_key: dict[str, int] = {}
        #: Proofs expiring at or before this instant may have been forgotten: refused.
        self.floor = -math.inf

    def __len__(self) -> int:
        return len(self._seen)

    def _drop_first(self) -> float:
        replay_key = self._order.popleft()
        expires_at, jkt = self._seen.pop(replay_key)
        left = self._per_key[jkt] - 1
        if left:
            self._per_key[jkt] = left
        else:
            del self._per_key[jkt]
        return expires_at

    def _expire(self, now: float) -> None:
        # Entries leave in insertion order; one whose window ended but sits behind a younger one
        # waits (and counts) until it reaches the front: bounded all the same.
        while self._order and self._seen[self._order[0]][0] < now:
            self._drop_first()

    async def remember(self, replay_key: bytes, jkt: str, expires_at: float, now: float) -> None:
        self._expire(now)
        if replay_key in self._seen:
            raise Unauthenticated("dpop_proof_replayed", "this proof's jti was seen before")
        if expires_at <= self.floor:
            raise Unauthenticated("dpop_replay_store_full", "proof older than what the full store covers")
        if self._per_key.get(jkt, 0) >= self._max_per_key:
            raise Unauthenticated("dpop_replay_store_full", "too many live proofs for one key")
        while len(self._seen) >= self._max_entries:
            self.floor = max(self.floor, self._drop_first())
        self._seen[replay_key] = (expires_at, jkt)
        self._order.append(replay_key)
        self._per_key[jkt] = self._per_key.get(jkt, 0) + 1

    async def close(self) -> None:
        self._seen.clear()
        self._order.clear()
        self._per_key.clear()
