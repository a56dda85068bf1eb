"""``python -m http_facade`` / ``secureroute-facade``: serve HTTP(S) until SIGTERM or SIGINT.

Bad settings (or a busy port) print one line on stderr and exit with code 2. With
``--workers N`` (N > 1) this process becomes a supervisor of N servers sharing the port, whose
``/metrics`` add up every worker's figures.

Usage:
    secureroute-facade --listen 127.0.0.1:3000 --backend localhost:50051
    SECUREROUTE_BACKEND=service:50051 python -m http_facade --workers 2
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence

from http_facade.app import PER_REQUEST_LOGGERS, backend_credentials
from http_facade.metrics import MULTIPROCESS_ENV
from http_facade.runner import FacadeServer
from http_facade.settings import FacadeSettings
from runtime.listen import ListenAddress, reserve_port
from runtime.metrics_server import worker_metrics_flags
from runtime.process import run_program, watch_stop_signals
from runtime.tls import ServerTLS, check_server_tls, ssl_server_context
from runtime.workers import WorkerPlan, current_worker, supervise

__all__ = ["main"]

_log = logging.getLogger("http_facade")


async def _serve(settings: FacadeSettings) -> None:
    ssl_context = None
    if settings.http.tls_cert is not None and settings.http.tls_key is not None:
        ssl_context = ssl_server_context(ServerTLS(settings.http.tls_cert, settings.http.tls_key))
    # A worker shares its port with the others (SO_REUSEPORT).
    server = FacadeServer(settings, ssl_context=ssl_context, reuse_port=current_worker() is not None)
    await server.start()
    try:
        stopping = watch_stop_signals()
        for address in server.addresses:
            _log.info(
                "%s listening on %s (%s)",
                FacadeSettings.prog,
                _format(address),
                "https" if ssl_context else "http",
            )
        if settings.http.metrics_listen is not None:
            metrics = ListenAddress(settings.http.metrics_listen.host, server.metrics_port or 0)
            _log.info("metrics on http://%s/metrics", metrics)
        await stopping.wait()
        _log.info("shutting down")
    finally:
        await server.stop()


def _format(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def _supervise(settings: FacadeSettings, argv: Sequence[str]) -> int:
    """Reserve the port and run ``settings.workers`` copies of ourselves sharing one metrics directory."""
    with reserve_port(settings.http.listen, "listen") as reserved:
        listen = ListenAddress(settings.http.listen.host, reserved.getsockname()[1])
        metrics_dir = tempfile.mkdtemp(prefix="secureroute-facade-metrics-")
        try:
            metrics_flags = worker_metrics_flags(settings.http.metrics_listen, settings.workers)
            worker_argv = [
                sys.executable,
                "-m",
                "http_facade",
                *argv,
                "--workers",
                "1",
                "--listen",
                str(listen),
            ]
            plan = WorkerPlan(
                prog=FacadeSettings.prog,
                count=settings.workers,
                argv_for=lambda index: [*worker_argv, *metrics_flags(index)],
                grace_s=settings.grace_period_s,
                env={MULTIPROCESS_ENV: metrics_dir},
            )
            scheme = "https" if settings.http.tls_cert is not None else "http"
            _log.info(
                "%s listening on %s (%s) with %d workers",
                FacadeSettings.prog,
                listen,
                scheme,
                settings.workers,
            )
            return supervise(plan)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _checked_settings(argv: Sequence[str]) -> FacadeSettings:
    """The settings, with the TLS files (ours and the backend's) checked before anything starts."""
    settings = FacadeSettings.load(argv)
    if settings.http.tls_cert is not None and settings.http.tls_key is not None:
        check_server_tls(ServerTLS(settings.http.tls_cert, settings.http.tls_key))
    backend_credentials(settings)
    return settings


def main(argv: Sequence[str] | None = None) -> None:
    run_program(
        FacadeSettings.prog,
        argv,
        load=_checked_settings,
        supervise=_supervise,
        serve=_serve,
        per_request_loggers=PER_REQUEST_LOGGERS,
    )


if __name__ == "__main__":
    main()
