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

from secureroute.settings import ListenAddress, SettingsError

__all__ = ["MetricsServer"]


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
