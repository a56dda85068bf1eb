"""``python -m secureroute`` / ``secureroute``: gRPC and HTTP from one process and one event loop.

The gRPC server is ``service.build_server``'s; the HTTP facade is ``http_facade.runner``'s, over a
``LocalBackend``: jwt_authn's own aiohttp middleware on the gRPC server's ``Authenticator`` (one
Policy, one key-set cache, one token cache for both transports) in front of the service's domain
code (``service.handlers.SecureRouteCalls``), called directly. One metrics listener shows both
transports' series and the guard's outcomes.

Lifecycle:
- both listeners are checked before either starts: one that cannot bind exits 2 with one line
  naming it (``grpc_listen: cannot bind ...``), and nothing is left listening;
- SIGTERM or SIGINT drains both: health NOT_SERVING, both keep serving for ``drain_delay_s``, then
  in-flight calls and requests get ``grace_period_s``, then the guard closes; exit 0;
- a transport that stops by itself is logged and the program exits 1, the other one drained.

One process, without a ``workers`` setting: run several containers to scale.

Usage:
    secureroute --issuer https://idp.example.com/ --audiences secureroute
    SECUREROUTE_GRPC_LISTEN=127.0.0.1:50051 SECUREROUTE_HTTP_LISTEN=127.0.0.1:3000 python -m secureroute ...
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from http_facade.app import PER_REQUEST_LOGGERS
from http_facade.backend import LocalBackend
from http_facade.metrics import FacadeMetrics
from http_facade.runner import FacadeServer
from runtime.listen import ListenAddress, check_bindable
from runtime.process import run_program, watch_stop_signals
from runtime.settings import SettingsError
from runtime.tls import ServerTLS, check_server_tls, ssl_server_context
from secureroute.settings import SecureRouteSettings, split_settings
from service.handlers import SecureRouteCalls
from service.server import SecureRouteServer, build_server
from service.settings import authn_config

__all__ = ["main"]

_log = logging.getLogger(__name__)

#: Exit code when one transport stopped by itself.
EXIT_TRANSPORT_FAILED = 1


def _renamed(error: SettingsError, prefix: str) -> SettingsError:
    """A split program's ``listen: ...`` as the one program's ``<prefix>_listen: ...``."""
    text = str(error)
    return SettingsError(f"{prefix}_{text}" if text.startswith("listen") else text)


def _build(settings: SecureRouteSettings) -> tuple[SecureRouteServer, FacadeServer]:
    """Both servers built, the gRPC one bound, nothing started. Raises ``SettingsError``."""
    service_settings, facade_settings = split_settings(settings)
    check_bindable(settings.http.listen, "http_listen")  # before the gRPC bind: nothing to undo
    try:
        service = build_server(service_settings)
    except SettingsError as error:
        raise _renamed(error, "grpc") from None
    ssl_context = None
    if settings.http.tls_cert is not None and settings.http.tls_key is not None:
        ssl_context = ssl_server_context(ServerTLS(settings.http.tls_cert, settings.http.tls_key))
    facade = FacadeServer(
        facade_settings,
        backend=LocalBackend(SecureRouteCalls(), service.authenticator),
        metrics=None if settings.metrics_listen is None else FacadeMetrics(registry=service.metrics.registry),
        ssl_context=ssl_context,
    )
    return service, facade


async def _start(service: SecureRouteServer, facade: FacadeServer) -> None:
    """Start both, or neither (what started is stopped). Raises ``SettingsError``."""
    await service.start()
    try:
        await facade.start()
    except SettingsError as error:
        await service.stop(0, drain_delay_s=0)
        raise _renamed(error, "http") from None
    except BaseException:
        await service.stop(0, drain_delay_s=0)
        raise


async def _drain(service: SecureRouteServer, facade: FacadeServer, settings: SecureRouteSettings) -> None:
    """NOT_SERVING, serve on for the drain delay, then both finish their calls within the grace."""
    await service.drain(settings.drain_delay_s)
    await asyncio.gather(facade.stop(), service.server.stop(settings.grace_period_s))
    # The facade's requests need the guard: it closes once both transports have drained.
    await service.close()


async def _serve(settings: SecureRouteSettings) -> None:
    service, facade = _build(settings)
    await _start(service, facade)
    stopping = watch_stop_signals()
    _log.info(
        "%s listening on %s (grpc)",
        SecureRouteSettings.prog,
        ListenAddress(settings.grpc.listen.host, service.port),
    )
    for address in facade.addresses:
        scheme = "https" if settings.http.tls_cert is not None else "http"
        _log.info(
            "%s listening on %s (%s)", SecureRouteSettings.prog, ListenAddress(address[0], address[1]), scheme
        )
    if settings.metrics_listen is not None and service.metrics_port is not None:
        _log.info(
            "metrics on http://%s/metrics", ListenAddress(settings.metrics_listen.host, service.metrics_port)
        )
    grpc_ended = asyncio.ensure_future(service.server.wait_for_termination())
    watchers = {
        asyncio.ensure_future(stopping.wait()): "signal",
        grpc_ended: "grpc",
        asyncio.ensure_future(facade.wait_closed()): "http",
    }
    done, pending = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
    for future in pending - {grpc_ended}:
        # Not grpc's: cancelling wait_for_termination cancels the server's own shutdown.
        future.cancel()
    failed = sorted(watchers[future] for future in done if watchers[future] != "signal")
    if failed:
        _log.error("the %s transport stopped by itself; stopping the other", " and ".join(failed))
    else:
        _log.info(
            "shutting down: serving %.1f s more, then draining for up to %.1f s",
            settings.drain_delay_s,
            settings.grace_period_s,
        )
    await _drain(service, facade, settings)
    await grpc_ended
    _log.info("stopped")
    if failed:
        raise SystemExit(EXIT_TRANSPORT_FAILED)


def _checked_settings(argv: Sequence[str]) -> SecureRouteSettings:
    """The settings, with the jwt_authn config and the TLS files checked before anything starts."""
    settings = SecureRouteSettings.load(argv)
    authn_config(split_settings(settings)[0])
    if settings.grpc.tls_cert is not None and settings.grpc.tls_key is not None:
        check_server_tls(
            ServerTLS(settings.grpc.tls_cert, settings.grpc.tls_key, settings.grpc.tls_client_ca)
        )
    if settings.http.tls_cert is not None and settings.http.tls_key is not None:
        check_server_tls(ServerTLS(settings.http.tls_cert, settings.http.tls_key))
    return settings


def main(argv: Sequence[str] | None = None) -> None:
    run_program(
        SecureRouteSettings.prog,
        argv,
        load=_checked_settings,
        supervise=None,
        serve=_serve,
        per_request_loggers=PER_REQUEST_LOGGERS,
    )
