"""The standard grpc.health.v1 service, driven by the authenticator's readiness.

The server as a whole ("") is SERVING from the start: the process is up and answers.
``secureroute.v1.SecureRouteService`` is NOT_SERVING until the authenticator has a key set,
because before that every SecureRoute call would fail with UNAVAILABLE. On shutdown every
service turns NOT_SERVING before the server stops accepting calls, so load balancers drain first.

The same status is read without a call by the admin listener's probes (``probes()``, served by
``secureroute.metrics_server``): ``/ready`` is SecureRouteService's status, ``/health`` is the
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

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from secureroute.metrics_server import Probes

__all__ = ["SECURE_ROUTE_SERVICE", "HealthReporter"]

SECURE_ROUTE_SERVICE = "secureroute.v1.SecureRouteService"

_log = logging.getLogger(__name__)


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

    async def enter_shutdown(self) -> None:
        """Every service NOT_SERVING, permanently (later ``mark_ready`` calls are ignored)."""
        self._shutting_down = True
        await self.servicer.enter_graceful_shutdown()
