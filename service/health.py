"""The standard grpc.health.v1 service, driven by the authenticator's readiness.

The server as a whole ("") is SERVING from the start: the process is up and answers.
``secureroute.v1.SecureRouteService`` is NOT_SERVING until the authenticator has a key set,
because before that every SecureRoute call would fail with UNAVAILABLE. On shutdown every
service turns NOT_SERVING before the server stops accepting calls, so load balancers drain first.

With a shared DPoP replay store (Redis), ``dpop-replay-store`` is SERVING while the store answers
its pings and NOT_SERVING while it does not: DPoP calls are then refused (fail closed) and Bearer
calls go on, so readiness does not follow it (taking every replica out would stop those too).

The same status is read without a call by the admin listener's probes (``probes()``, served by
``runtime.metrics_server``): ``/ready`` is SecureRouteService's status, ``/health`` is the
process answering at all. They share no pool with public calls, so no anonymous caller starves them.

Usage:
    health = HealthReporter()
    await health.start()
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    authenticator.add_ready_callback(health.mark_ready)
    ...
    await health.enter_shutdown()
    admin = MetricsServer(listen, exposition, probes=health.probes())
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from runtime.metrics_server import Probes

__all__ = ["DPOP_REPLAY_STORE", "REPLAY_STORE_PING_INTERVAL_S", "SECURE_ROUTE_SERVICE", "HealthReporter"]

SECURE_ROUTE_SERVICE = "secureroute.v1.SecureRouteService"
#: The health entry of the shared DPoP replay store (grpc.health.v1 takes any name).
DPOP_REPLAY_STORE = "dpop-replay-store"
#: How often the shared replay store is pinged: an outage shows within this, and a store that
#: came back is noticed without waiting for a DPoP call.
REPLAY_STORE_PING_INTERVAL_S = 2.0

_log = logging.getLogger(__name__)


class _PingedStore(Protocol):
    async def check(self) -> bool: ...


class HealthReporter:
    """Owns the aio ``HealthServicer`` and the status of each service we report."""

    def __init__(self) -> None:
        self.servicer = HealthServicer()  # "" starts SERVING (the servicer's own default)
        self._tasks: set[asyncio.Task[None]] = set()
        self._keys_loaded = False
        self._shutting_down = False

    @property
    def ready(self) -> bool:
        """SecureRouteService's status as a bool: keys loaded, and not draining."""
        return self._keys_loaded and not self._shutting_down

    def probes(self) -> Probes:
        """The admin listener's ``/health`` (the loop answers: always true while it serves, drain
        included, so a draining pod is never restarted) and ``/ready`` (``ready``)."""
        return Probes(live=lambda: True, ready=lambda: self.ready)

    async def start(self) -> None:
        """Report the service NOT_SERVING (before the server starts) until ``mark_ready``."""
        await self.servicer.set(SECURE_ROUTE_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)

    def mark_ready(self) -> None:
        """Ready callback for the authenticator: runs on the loop, so schedule the async set."""
        task = asyncio.get_running_loop().create_task(self._set_ready())
        self._tasks.add(task)  # keep a reference: the loop only holds tasks weakly
        task.add_done_callback(self._tasks.discard)

    async def _set_ready(self) -> None:
        if self._shutting_down:
            return  # enter_graceful_shutdown ignores later sets too
        self._keys_loaded = True
        _log.info("key set loaded: %s is SERVING", SECURE_ROUTE_SERVICE)
        await self.servicer.set(SECURE_ROUTE_SERVICE, health_pb2.HealthCheckResponse.SERVING)

    def watch_replay_store(self, store: _PingedStore) -> None:
        """Report ``DPOP_REPLAY_STORE`` from the store's pings until shutdown."""
        task = asyncio.get_running_loop().create_task(self._watch(store))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, store: _PingedStore) -> None:
        answered: bool | None = None
        while not self._shutting_down:
            ok = await store.check()  # bounded by the store's own timeout; logs the outage once
            if ok != answered and not self._shutting_down:
                answered = ok
                status = (
                    health_pb2.HealthCheckResponse.SERVING
                    if ok
                    else health_pb2.HealthCheckResponse.NOT_SERVING
                )
                await self.servicer.set(DPOP_REPLAY_STORE, status)
            await asyncio.sleep(REPLAY_STORE_PING_INTERVAL_S)

    async def enter_shutdown(self) -> None:
        """Every service NOT_SERVING, permanently (later ``mark_ready`` calls are ignored)."""
        self._shutting_down = True
        for task in list(self._tasks):
            task.cancel()
        await self.servicer.enter_graceful_shutdown()
