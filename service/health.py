"""The standard grpc.health.v1 service, driven by the authenticator's readiness.

The server as a whole ("") is SERVING from the start: the process is up and answers.
``secureroute.v1.SecureRouteService`` is NOT_SERVING until the authenticator has a key set,
because before that every SecureRoute call would fail with UNAVAILABLE. On shutdown every
service turns NOT_SERVING before the server stops accepting calls, so load balancers drain first.

Usage:
    health = HealthReporter()
    await health.start()
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    authenticator.add_ready_callback(health.mark_ready)
    ...
    await health.enter_shutdown()
"""

from __future__ import annotations

import asyncio
import logging

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

__all__ = ["SECURE_ROUTE_SERVICE", "HealthReporter"]

SECURE_ROUTE_SERVICE = "secureroute.v1.SecureRouteService"

_log = logging.getLogger(__name__)


class HealthReporter:
    """Owns the aio ``HealthServicer`` and the status of each service we report."""

    def __init__(self) -> None:
        self.servicer = HealthServicer()  # "" starts SERVING (the servicer's own default)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Report the service NOT_SERVING (before the server starts) until ``mark_ready``."""
        await self.servicer.set(SECURE_ROUTE_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)

    def mark_ready(self) -> None:
        """Ready callback for the authenticator: runs on the loop, so schedule the async set."""
        task = asyncio.get_running_loop().create_task(self._set_ready())
        self._tasks.add(task)  # keep a reference: the loop only holds tasks weakly
        task.add_done_callback(self._tasks.discard)

    async def _set_ready(self) -> None:
        _log.info("key set loaded: %s is SERVING", SECURE_ROUTE_SERVICE)
        await self.servicer.set(SECURE_ROUTE_SERVICE, health_pb2.HealthCheckResponse.SERVING)

    async def enter_shutdown(self) -> None:
        """Every service NOT_SERVING, permanently (later ``mark_ready`` calls are ignored)."""
        await self.servicer.enter_graceful_shutdown()
