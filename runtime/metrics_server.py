"""The admin listener: ``GET /metrics`` for Prometheus and, given ``probes``, ``GET /health`` and
``GET /ready`` for the kubelet, on a port of its own, for every program.

It runs on the program's event loop, so a scrape reads the counters on the thread that changes
them. Plain HTTP, apart from the public port: bind it to loopback (the default) or a pod
address, never to the public side (no Service in ``deploy/`` exposes it).

The probes answer from a flag the program keeps, without a call through the public chain: no
pool, no interceptor, no connection budget shared with public callers, so no anonymous flood of
the public ports starves them (issue 24). ``/health`` is 200 while the process serves;
``/ready`` is 200 when it should get traffic (the program decides: keys loaded and not draining
for the service and the one program), else 503. The body is ``SERVING`` or ``NOT_SERVING``, as
grpc.health.v1 names them.

Usage:
    server = MetricsServer(ListenAddress("127.0.0.1", 9464), metrics.exposition, probes=health.probes())
    await server.start()
    print(server.port)
    await server.stop()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from runtime.listen import ListenAddress, check_bindable
from runtime.settings import SettingsError

__all__ = ["MetricsServer", "Probes", "worker_metrics_flags"]


@dataclass(frozen=True, slots=True)
class Probes:
    """What the admin listener's probe paths answer: each is called on the event loop per probe."""

    #: ``GET /health``: the process serves (a false one gets the pod restarted).
    live: Callable[[], bool]
    #: ``GET /ready``: the process should get traffic (a false one takes it out of the endpoints).
    ready: Callable[[], bool]


def _probe_answer(up: bool) -> web.Response:
    return web.Response(
        status=200 if up else 503,
        text="SERVING\n" if up else "NOT_SERVING\n",
        headers={"Cache-Control": "no-store"},
    )


class MetricsServer:
    def __init__(
        self, listen: ListenAddress, exposition: Callable[[], bytes], *, probes: Probes | None = None
    ) -> None:
        self._listen = listen
        self._exposition = exposition
        self._probes = probes
        self._runner: web.AppRunner | None = None
        self.port = listen.port

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        if self._probes is not None:
            probes = self._probes

            async def health(request: web.Request) -> web.Response:
                return _probe_answer(probes.live())

            async def ready(request: web.Request) -> web.Response:
                return _probe_answer(probes.ready())

            app.router.add_get("/health", health)
            app.router.add_get("/ready", ready)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._listen.host, self._listen.port)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            raise SettingsError(f"metrics_listen: cannot bind {self._listen}: {err.strerror}") from None
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def worker_metrics_flags(metrics: ListenAddress | None, workers: int) -> Callable[[int], list[str]]:
    """For a supervisor: worker k's ``--metrics-listen`` flag (port + k; port 0 stays 0), after
    checking that every one of those ports is free. Raises ``SettingsError``."""
    if metrics is not None and metrics.port != 0:
        if metrics.port + workers - 1 > 65535:
            raise SettingsError(f"metrics_listen: ports {metrics.port}+{workers} run past 65535")
        for index in range(workers):
            check_bindable(ListenAddress(metrics.host, metrics.port + index), "metrics_listen")

    def flags(index: int) -> list[str]:
        if metrics is None:
            return ["--metrics-listen", "off"]
        port = metrics.port + index if metrics.port else 0
        return ["--metrics-listen", str(ListenAddress(metrics.host, port))]

    return flags
