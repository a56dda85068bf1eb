"""Serving the app: the public listener with each connection's budget, and the metrics listener.

``FacadeServer`` runs the app with ``web.AppRunner`` (which runs its startup and cleanup) and
listens with ``loop.create_server`` and ``http_facade.connections``' protocol factory, public
asyncio and aiohttp API both: aiohttp's sites take no protocol factory of their own, and the
guarded one bounds what each connection may cost before the app sees a request. Prometheus
metrics and the kubelet's probes are served apart, on ``metrics_listen`` (loopback by default),
never on the public port: ``/health`` while the process serves, ``/ready`` from start until
``stop`` begins. Readiness does not follow the backend: a facade without its backend answers 503
with ``Retry-After`` at once, and taking every facade out of the endpoints would not serve anyone
better (the public ``/health`` still asks the backend, for users and load balancers).

Usage:
    server = FacadeServer(settings)                 # settings.http.listen may be 127.0.0.1:0
    await server.start()
    print(server.addresses, server.metrics_port)
    await server.stop()
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiohttp import web
from aiohttp.log import access_logger

from http_facade.app import PROTOCOL_LOG, create_app
from http_facade.backend import BackendContext, LocalBackend
from http_facade.connections import ConnectionBudget, guarded_protocol_factory
from http_facade.memory import trim_after_bursts
from http_facade.metrics import METRICS_KEY, FacadeMetrics
from http_facade.settings import FacadeSettings
from runtime.metrics_server import MetricsServer, Probes
from runtime.settings import SettingsError

__all__ = ["LISTEN_BACKLOG", "FacadeServer", "handler_args"]

#: The kernel's accept queue, nginx's default on Linux (asyncio's 100 dropped SYNs under a
#: connection flood, costing honest clients a 1 s retransmit); connections past
#: ``max_connections`` wait there (or are accepted and closed at once).
LISTEN_BACKLOG = 511


def handler_args(settings: FacadeSettings) -> dict[str, Any]:
    """aiohttp's per-connection options. Its own line limits sit just above ours
    (``http_facade.connections`` answers first, with 431); the body cap is the app's."""
    return {
        "max_line_size": settings.http.max_header_bytes,
        "max_field_size": settings.http.max_header_bytes,
        "max_headers": settings.http.max_headers + 1,
        "logger": PROTOCOL_LOG,
        # No access log unless asked for (http_access_log): a line per request cost about 40 % of a
        # warm request (docs/benchmarks.md); Envoy, Express and gunicorn log none by default.
        "access_log": access_logger if settings.http.access_log else None,
        # Idle keep-alive connections; aiohttp arms it at connection open and after each response.
        "keepalive_timeout": settings.http.keepalive_timeout_s,
    }


class FacadeServer:
    """The facade app on its guarded listener, plus its metrics listener."""

    def __init__(
        self,
        settings: FacadeSettings,
        *,
        backend: BackendContext | LocalBackend | None = None,
        metrics: FacadeMetrics | None = None,
        ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
        shutdown_timeout_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.app = create_app(settings, backend, metrics)
        self._ssl_context = ssl_context
        self._reuse_port = reuse_port
        grace = settings.grace_period_s if shutdown_timeout_s is None else shutdown_timeout_s
        self._runner = web.AppRunner(self.app, shutdown_timeout=grace)
        self.budget = ConnectionBudget(
            max_connections=settings.http.max_connections,
            max_header_bytes=settings.http.max_header_bytes,
            max_headers=settings.http.max_headers,
            header_timeout_s=settings.http.header_timeout_s,
        )
        self._listener: asyncio.Server | None = None
        self._trimmer: asyncio.Task[None] | None = None
        self._metrics: MetricsServer | None = None
        self._serving = False
        self.addresses: list[Any] = []

    @property
    def metrics_port(self) -> int | None:
        return None if self._metrics is None else self._metrics.port

    async def start(self) -> None:
        """Start the app and listen. Raises ``SettingsError("listen: cannot bind ...")``."""
        await self._runner.setup()
        try:
            await self._listen()
            self._trimmer = asyncio.get_running_loop().create_task(trim_after_bursts(self.budget))
            metrics = self.app.get(METRICS_KEY)
            if self.settings.http.metrics_listen is not None and metrics is not None:
                probes = Probes(live=lambda: True, ready=lambda: self._serving)
                self._metrics = MetricsServer(
                    self.settings.http.metrics_listen, metrics.exposition, probes=probes
                )
                await self._metrics.start()
            self._serving = True
        except BaseException:
            await self.stop()
            raise

    async def _listen(self) -> None:
        server = self._runner.server
        assert server is not None  # set by setup()
        listen = self.settings.http.listen
        factory = guarded_protocol_factory(server, self.budget, handler_args(self.settings))
        try:
            self._listener = await asyncio.get_running_loop().create_server(
                factory,
                listen.host,
                listen.port,
                ssl=self._ssl_context,
                backlog=LISTEN_BACKLOG,
                reuse_address=True,
                reuse_port=self._reuse_port or None,
            )
        except OSError as err:
            raise SettingsError(f"listen: cannot bind {listen}: {err.strerror}") from None
        self.addresses = [sock.getsockname() for sock in self._listener.sockets]

    async def wait_closed(self) -> None:
        """Return when the listener has closed (``stop``, or a failure): the one program watches it."""
        if self._listener is not None:
            await self._listener.wait_closed()

    async def stop(self) -> None:
        """Stop accepting, let open requests finish within the grace period, close the rest."""
        self._serving = False
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._trimmer is not None:
            self._trimmer.cancel()
            self._trimmer = None
        await self._runner.cleanup()  # closes idle connections, waits for the busy ones
        if self._metrics is not None:
            await self._metrics.stop()
            self._metrics = None

    def url(self) -> str:
        """The base URL of the first address (for tests and logs)."""
        host, port = self.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self._ssl_context else 'http'}://{host}:{port}"
