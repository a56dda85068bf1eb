"""A small HTTP server for Prometheus: ``GET /metrics`` on a port of its own, for both programs.

It runs on the program's event loop, so a scrape reads the counters on the thread that changes
them. Plain HTTP, apart from the public port: bind it to loopback (the default) or a pod
address, never to the public side.

Usage:
    server = MetricsServer(ListenAddress("127.0.0.1", 9464), metrics.exposition)
    await server.start()
    print(server.port)
    await server.stop()
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from secureroute.ports import check_bindable
from secureroute.settings import ListenAddress, SettingsError

__all__ = ["MetricsServer", "worker_metrics_flags"]


class MetricsServer:
    def __init__(self, listen: ListenAddress, exposition: Callable[[], bytes]) -> None:
        self._listen = listen
        self._exposition = exposition
        self._runner: web.AppRunner | None = None
        self.port = listen.port

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
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
