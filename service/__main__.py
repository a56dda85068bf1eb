"""``python -m service`` / ``secureroute-service``: run the gRPC server until SIGTERM or SIGINT.

Bad settings (or a busy port) print one line on stderr and exit with code 2; a signal drains
the server (health NOT_SERVING, serving on for the drain delay, in-flight RPCs finish within
the grace period) and exits 0.
With ``--workers N`` (N > 1) this process becomes a supervisor of N servers sharing the port.
``--listen-unix PATH`` adds a Unix socket beside the TCP port; it needs ``--workers 1`` (one path
cannot be shared by several processes, so the combination is refused rather than split per worker).

Usage:
    secureroute-service --issuer https://idp.example.com/ --audiences secureroute --listen 127.0.0.1:50051
    SECUREROUTE_ISSUER=... SECUREROUTE_AUDIENCES=secureroute python -m service --workers 2
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from runtime.listen import ListenAddress, reserve_port
from runtime.metrics_server import worker_metrics_flags
from runtime.process import run_program, watch_stop_signals
from runtime.tls import ServerTLS, check_server_tls
from runtime.workers import WorkerPlan, current_worker, supervise
from service.server import build_server
from service.settings import ServiceSettings, authn_config

__all__ = ["main"]

_log = logging.getLogger("service")


async def _serve(settings: ServiceSettings) -> None:
    # A worker shares its port with the others (SO_REUSEPORT).
    app = build_server(settings, reuse_port=current_worker() is not None)
    await app.start()
    stopping = watch_stop_signals()
    # Tests and operators read the bound port from this line (useful with port 0).
    _log.info(
        "%s listening on %s (grpc)", ServiceSettings.prog, ListenAddress(settings.grpc.listen.host, app.port)
    )
    if settings.grpc.listen_unix is not None:
        _log.info("%s listening on unix:%s (grpc)", ServiceSettings.prog, settings.grpc.listen_unix)
    if settings.metrics_listen is not None and app.metrics_port is not None:
        metrics_address = ListenAddress(settings.metrics_listen.host, app.metrics_port)
        _log.info("metrics on http://%s/metrics", metrics_address)
    await stopping.wait()
    _log.info(
        "shutting down: serving %.1f s more, then draining for up to %.1f s",
        settings.drain_delay_s,
        settings.grace_period_s,
    )
    await app.stop()
    _log.info("stopped")


def _supervise(settings: ServiceSettings, argv: Sequence[str]) -> int:
    """Reserve the port, check the metrics ports, run ``settings.workers`` copies of ourselves."""
    reserved = reserve_port(settings.grpc.listen, "listen")
    with reserved:
        listen = ListenAddress(settings.grpc.listen.host, reserved.getsockname()[1])
        metrics_flags = worker_metrics_flags(settings.metrics_listen, settings.workers)

        def argv_for(index: int) -> list[str]:
            extra = ["--workers", "1", "--listen", str(listen), *metrics_flags(index)]
            return [sys.executable, "-m", "service", *argv, *extra]

        _log.info("%s listening on %s (grpc) with %d workers", ServiceSettings.prog, listen, settings.workers)
        plan = WorkerPlan(
            prog=ServiceSettings.prog,
            count=settings.workers,
            argv_for=argv_for,
            grace_s=settings.drain_delay_s + settings.grace_period_s,
        )
        return supervise(plan)


def _checked_settings(argv: Sequence[str]) -> ServiceSettings:
    """The settings, with the jwt_authn config and the TLS files checked before anything starts."""
    settings = ServiceSettings.load(argv)
    authn_config(settings)  # build_server makes it again: it is cheap, and the same every time
    if settings.grpc.tls_cert is not None and settings.grpc.tls_key is not None:
        check_server_tls(
            ServerTLS(settings.grpc.tls_cert, settings.grpc.tls_key, settings.grpc.tls_client_ca)
        )
    return settings


def main(argv: Sequence[str] | None = None) -> None:
    run_program(ServiceSettings.prog, argv, load=_checked_settings, supervise=_supervise, serve=_serve)


if __name__ == "__main__":
    main()
