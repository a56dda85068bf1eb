"""The key-set cache of one issuer: loaded in the background, refreshed, rate limited, outage-proof.

- A background task loads the key set at start and refreshes it ahead of expiry (Cache-Control
  max-age within bounds, else every ``refresh_interval_s``), so no request waits for a routine
  refresh. Failures retry with exponential backoff and jitter.
- An unknown ``kid`` triggers one on-demand refresh, shared by every concurrent request (single
  flight) and at most once per ``cooldown_s``; a request waits for it at most ``refresh_wait_s``.
  A kid still unknown afterwards is remembered in a small negative cache so floods of random
  kids cost nothing.
- Through an issuer outage the last good key set keeps serving for up to ``max_staleness_s``.

Usage:
    cache = KeySetCache(issuer_config, source)
    cache.start()
    keys = await cache.candidates(kid="abc", alg="RS256", limit=4)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable

from jwt_authn.config import IssuerConfig
from jwt_authn.errors import KeySetUnavailable, Unauthenticated
from jwt_authn.keys import KeySet, VerificationKey
from jwt_authn.observer import TracingObserver
from jwt_authn.sources import KeySource, KeySourceError

__all__ = ["KeySetCache"]

log = logging.getLogger(__name__)


class KeySetCache:
    """Keys of one issuer, with the lifecycle described in the module docstring."""

    def __init__(
        self,
        config: IssuerConfig,
        source: KeySource,
        *,
        negative_cache_size: int = 1024,
        observer: TracingObserver | None = None,
    ) -> None:
        self.config = config
        self._source = source
        self._observer = observer
        self._key_set: KeySet | None = None
        self._loaded_at: float | None = None  # monotonic time of the last successful load
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._next_max_age: float | None = None
        #: kid -> monotonic time it was found missing from a fresh key set.
        self._unknown_kids: OrderedDict[str, float] = OrderedDict()
        self._negative_cache_size = negative_cache_size
        self._ready_callbacks: list[Callable[[], None]] = []
        self._removed_callbacks: list[Callable[[frozenset[str]], None]] = []
        # Counters, for metrics and tests.
        self.refresh_successes = 0
        self.refresh_failures = 0
        self.on_demand_refreshes = 0

    # Lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Begin loading in the background. Never blocks, never fails: the issuer may be down."""
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(
                self._refresh_forever(), name=f"jwks-refresh {self._source.label}"
            )

    async def close(self) -> None:
        for task in (self._refresher, self._inflight):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._refresher = self._inflight = None

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when the first key set is loaded (at once if it already is)."""
        if self._key_set is not None:
            callback()
        else:
            self._ready_callbacks.append(callback)

    def on_keys_removed(self, callback: Callable[[frozenset[str]], None]) -> None:
        """Call ``callback(key_ids)`` whenever a refresh drops keys or replaces a kid's key material
        (``VerificationKey.key_id`` names the material, so both are keys that left)."""
        self._removed_callbacks.append(callback)

    # State ------------------------------------------------------------------------------

    @property
    def ever_loaded(self) -> bool:
        return self._key_set is not None

    @property
    def key_set(self) -> KeySet | None:
        """The current key set, or None when none was loaded or it is staler than allowed."""
        if self._loaded_at is None or time.monotonic() - self._loaded_at > self.config.max_staleness_s:
            return None
        return self._key_set

    @property
    def age_s(self) -> float | None:
        return None if self._loaded_at is None else time.monotonic() - self._loaded_at

    # The request path --------------------------------------------------------------------

    def known_candidates(self, kid: str | None, alg: str, *, limit: int) -> tuple[VerificationKey, ...]:
        """What ``candidates`` returns at once when the current key set has fitting keys, else ()
        (no usable key set, an unknown kid, no fitting key: ``candidates`` decides those). The
        request path's fast lane: no coroutine for the common case."""
        key_set = self.key_set
        return key_set.candidates(kid, alg, limit=limit) if key_set is not None else ()

    async def candidates(self, kid: str | None, alg: str, *, limit: int) -> tuple[VerificationKey, ...]:
        """Keys that may verify a token with this ``kid`` and ``alg``.

        Raises ``KeySetUnavailable`` when no usable key set exists, and ``Unauthenticated``
        when the kid is not the issuer's (after at most one rate-limited refresh).
        """
        key_set = self.key_set
        if key_set is None:
            await self._refresh_on_demand()
            key_set = self.key_set
            if key_set is None:
                raise KeySetUnavailable("key_set_unavailable", f"no key set for {self.config.issuer}")
        found = key_set.candidates(kid, alg, limit=limit)
        if found or kid is None:
            if not found:
                raise Unauthenticated("no_matching_key", f"no {alg} key without kid")
            return found
        if kid in key_set.by_kid:
            raise Unauthenticated("key_algorithm_mismatch", f"key {kid[:64]!r} does not fit {alg}")
        if self._known_unknown(kid):
            raise Unauthenticated("unknown_kid", "kid was unknown at the last refresh")
        refreshed = await self._refresh_on_demand()
        key_set = self.key_set or key_set
        found = key_set.candidates(kid, alg, limit=limit)
        if found:
            return found
        if refreshed:
            # Only a kid missing from a fresh key set is known to be unknown; one skipped by the
            # cooldown may be a brand-new key and must get its chance at the next refresh.
            self._remember_unknown(kid)
        raise Unauthenticated("unknown_kid", "kid is not in the issuer's key set")

    def _known_unknown(self, kid: str) -> bool:
        """True while ``kid`` was missing from a refresh less than a cooldown ago; after that the
        issuer may have published it, and it earns another (rate-limited) refresh."""
        found_at = self._unknown_kids.get(kid)
        if found_at is None:
            return False
        if time.monotonic() - found_at < self.config.cooldown_s:
            return True
        del self._unknown_kids[kid]
        return False

    def _remember_unknown(self, kid: str) -> None:
        if self._negative_cache_size == 0:
            return
        self._unknown_kids[kid] = time.monotonic()
        if len(self._unknown_kids) > self._negative_cache_size:
            self._unknown_kids.popitem(last=False)

    async def _refresh_on_demand(self) -> bool:
        """One refresh shared by all callers, at most once per cooldown. True if one ran and
        finished within ``refresh_wait_s``; a slower one goes on in the background."""
        if self._inflight is None:
            now = time.monotonic()
            if self._last_attempt is not None and now - self._last_attempt < self.config.cooldown_s:
                if log.isEnabledFor(logging.DEBUG):
                    wait_s = self._last_attempt + self.config.cooldown_s - now
                    log.debug(
                        "key set refresh for %s skipped (cooldown); next allowed at %s, in %.1f s",
                        self.config.issuer,
                        time.strftime("%H:%M:%S", time.gmtime(time.time() + wait_s)) + "Z",
                        wait_s,
                    )
                return False
            self.on_demand_refreshes += 1
        # shield: neither this caller's deadline nor its cancellation (a client hanging up) may
        # cancel the fetch that every caller shares.
        try:
            async with asyncio.timeout(self.config.refresh_wait_s):
                return await asyncio.shield(self._refresh_once())
        except TimeoutError:
            log.info(
                "key set refresh for %s still running; the request goes on without it", self.config.issuer
            )
            return False

    # Refreshing -------------------------------------------------------------------------

    def _refresh_once(self) -> asyncio.Task[bool]:
        """The in-flight refresh, started if there is none (single flight)."""
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.get_running_loop().create_task(self._refresh())
        return self._inflight

    async def _refresh(self) -> bool:
        self._last_attempt = time.monotonic()
        try:
            if self._observer is None:
                await self._load()
            else:
                # Inside the try: the observer's context manager sees the failure before it is logged.
                with self._observer.key_fetch(self.config.issuer, "refresh", self._source.label):
                    await self._load()
        except (KeySourceError, ValueError) as err:
            self.refresh_failures += 1
            log.warning("key set refresh failed for %s: %s", self.config.issuer, err)
            return False
        except Exception as err:  # a hostile document must never kill the refresher
            self.refresh_failures += 1
            log.error("key set refresh failed for %s: unexpected %s", self.config.issuer, type(err).__name__)
            return False
        finally:
            self._inflight = None
        self.refresh_successes += 1
        return True

    async def _load(self) -> None:
        """Fetch and install the source's document; raises what a bad fetch or document raises."""
        fetched = await self._source.fetch()
        if fetched is not None:
            key_set = KeySet.from_document(
                fetched.document, max_keys=self.config.max_keys, source=self._source.label
            )
            if not key_set.keys:
                raise KeySourceError("the key set has no usable key")
            self._install(key_set)
            self._next_max_age = fetched.max_age_s
        elif self._key_set is None:
            raise KeySourceError("nothing to load")
        self._loaded_at = time.monotonic()

    def _install(self, key_set: KeySet) -> None:
        previous, self._key_set = self._key_set, key_set
        self._unknown_kids.clear()
        if previous is None:
            log.info("key set loaded for %s: %d keys", self.config.issuer, len(key_set.keys))
            callbacks, self._ready_callbacks = self._ready_callbacks, []
            for callback in callbacks:
                callback()
            return
        removed = previous.key_ids - key_set.key_ids
        if removed:
            log.info("key set for %s dropped or replaced %d keys", self.config.issuer, len(removed))
            for removed_callback in self._removed_callbacks:
                removed_callback(frozenset(removed))

    def _next_delay(self, succeeded: bool, failures: int) -> float:
        config = self.config
        if not succeeded:
            # Exponential backoff with "equal jitter": never a tight loop, never in lockstep.
            ceiling = min(
                config.retry_max_backoff_s, config.retry_initial_backoff_s * 2.0 ** min(failures - 1, 30)
            )
            return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not crypto
        if self._source.poll_interval_s is not None:
            return float(self._source.poll_interval_s)
        max_age = self._next_max_age if self._next_max_age is not None else config.refresh_interval_s
        return min(max(max_age, config.min_refresh_interval_s), config.max_refresh_interval_s)

    async def _refresh_forever(self) -> None:
        failures = 0
        while True:
            succeeded = await asyncio.shield(self._refresh_once())
            failures = 0 if succeeded else failures + 1
            await asyncio.sleep(self._next_delay(succeeded, failures))
