"""A replay store shared by several replicas, on Redis (``pip install 'jwt-authn[redis]'``).

Each accepted proof is one ``SET <prefix><digest> 1 NX PX <ms left in its window>``: Redis
answers whether the key was new, atomically across every replica, and forgets it when the
proof could no longer be accepted anyway. Nothing else is stored (no token, no proof, no jti in
clear: the key is a digest of the key thumbprint and the jti).

Fails closed: when Redis cannot answer within ``timeout_s`` (down, unreachable, out of memory
under ``maxmemory-policy noeviction``) the proof is refused with ``dpop_replay_store_unavailable``,
the store's ``available`` turns False (readiness), the observer counts the reason, and one
WARNING is logged per outage (and one INFO when Redis answers again). Run Redis with
``maxmemory-policy noeviction``: an eviction policy could drop a live entry and let its proof be
replayed.

Usage:
    store = RedisReplayStore.from_url("redis://127.0.0.1:6379/0")
    authenticator = Authenticator(config, replay_store=store)
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from jwt_authn.errors import Unauthenticated
from jwt_authn.replay import ReplayStoreUnavailable

__all__ = ["RedisReplayStore"]

log = logging.getLogger(__name__)

redis_asyncio: Any
try:
    from redis import asyncio as redis_asyncio
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - the optional extra is absent
    redis_asyncio = None
    RedisError = OSError  # type: ignore[assignment,misc]


class RedisReplayStore:
    """``ReplayStore`` on Redis, for replicas that must refuse each other's proofs."""

    def __init__(self, client: Any, *, key_prefix: str = "jwt-authn:dpop:", timeout_s: float = 0.5) -> None:
        if not key_prefix or not isinstance(key_prefix, str):
            raise ValueError("key_prefix: must be a non-empty string")
        if not 0 < timeout_s <= 10:
            raise ValueError("timeout_s: must be between 0 and 10 seconds")
        self._client = client
        self._prefix = key_prefix.encode()
        self._timeout_s = timeout_s
        self.available = True

    @classmethod
    def from_url(
        cls, url: str, *, key_prefix: str = "jwt-authn:dpop:", timeout_s: float = 0.5
    ) -> RedisReplayStore:
        """A store with its own client (``redis://host:port/db``, ``rediss://`` for TLS)."""
        if redis_asyncio is None:
            raise RuntimeError("RedisReplayStore needs the redis package: pip install 'jwt-authn[redis]'")
        client = redis_asyncio.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        return cls(client, key_prefix=key_prefix, timeout_s=timeout_s)

    def _unavailable(self, err: BaseException) -> ReplayStoreUnavailable:
        if self.available:
            log.warning("DPoP replay store (Redis) unavailable, refusing DPoP proofs: %s", type(err).__name__)
        self.available = False
        return ReplayStoreUnavailable(f"redis: {type(err).__name__}")

    def _answered(self) -> None:
        if not self.available:
            log.info("DPoP replay store (Redis) answers again")
        self.available = True

    async def remember(self, replay_key: bytes, jkt: str, expires_at: float, now: float) -> None:
        ttl_ms = max(1, math.ceil((expires_at - now) * 1000))
        try:
            async with asyncio.timeout(self._timeout_s):
                created = await self._client.set(
                    self._prefix + replay_key.hex().encode(), b"1", nx=True, px=ttl_ms
                )
        except (RedisError, OSError, TimeoutError) as err:
            raise self._unavailable(err) from None
        self._answered()
        if not created:
            raise Unauthenticated("dpop_proof_replayed", "this proof's jti was seen before (shared store)")

    async def check(self) -> bool:
        """Ping Redis (for a readiness probe); updates ``available``."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._client.ping()
        except (RedisError, OSError, TimeoutError) as err:
            self._unavailable(err)
            return False
        self._answered()
        return True

    async def close(self) -> None:
        await self._client.aclose()
