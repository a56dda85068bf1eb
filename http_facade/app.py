"""The app factory: routes, middlewares (metrics, request id, body cap), the backend channel, limits.

Usage:
    app = create_app(settings)
    runner = QuietErrorsRunner(app)          # http_facade.runner: parser errors never quote the request
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
"""

from __future__ import annotations

import logging

import grpc
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from http_facade.backend import backend_context
from http_facade.limits import body_limit_middleware
from http_facade.metrics import METRICS_KEY, FacadeMetrics, metrics_middleware, serve_metrics
from http_facade.request_id import request_id_middleware
from http_facade.routes import add_routes
from http_facade.settings import FacadeSettings
from secureroute.tls import ClientTLS, grpc_channel_credentials
from secureroute.tracing import http_middlewares

__all__ = ["MAX_BODY_BYTES", "MAX_HEADER_FIELD_BYTES", "SETTINGS_KEY", "backend_credentials", "create_app"]

#: Largest request line or header field. aiohttp's default (8190) is below what a real
#: access token with many claims can need; twice jwt_authn's 8 KiB token cap leaves room,
#: and anything longer gets a 4xx from the parser instead of reaching us.
MAX_HEADER_FIELD_BYTES = 16 * 1024
#: Largest request body (``client_max_size``, enforced by ``body_limit_middleware``). We take
#: no bodies; 64 KiB leaves room for clients that send a small one out of habit.
MAX_BODY_BYTES = 64 * 1024

SETTINGS_KEY = web.AppKey("settings", FacadeSettings)


class _RedactRejectedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse with the offending line: for an oversized
    Authorization header that is the start of the token. Keep the event, drop the text."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BadHttpMessage):
            record.msg = "rejected an unparsable or oversized request (%s, HTTP %d)"
            record.args = (type(error).__name__, error.code)
            record.exc_info = record.exc_text = None
            # A client's bad request is not our error.
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


# Passed to aiohttp's protocol handler instead of its default "aiohttp.server" logger.
_protocol_log = logging.getLogger("http_facade.server")
_protocol_log.addFilter(_RedactRejectedRequests())


def backend_credentials(settings: FacadeSettings) -> grpc.ChannelCredentials | None:
    """TLS credentials for the backend channel, or None for plaintext. Raises ``SettingsError``."""
    if not settings.backend_tls:
        return None
    return grpc_channel_credentials(
        ClientTLS(
            ca_file=settings.backend_ca,
            cert_file=settings.backend_client_cert,
            key_file=settings.backend_client_key,
        )
    )


def create_app(settings: FacadeSettings) -> web.Application:
    """The facade app. Raises ``SettingsError`` when a TLS file cannot be used."""
    # Metrics outermost: they see the final status, the router's 404/405 included. The body
    # cap innermost: its 413 still carries the request id and is counted.
    middlewares = [request_id_middleware, body_limit_middleware]
    if settings.http.metrics:
        middlewares.insert(0, metrics_middleware)
    middlewares[:0] = http_middlewares()  # tracing (when on) outermost: its span covers the rest
    app = web.Application(
        middlewares=middlewares,
        handler_args={
            "max_line_size": MAX_HEADER_FIELD_BYTES,
            "max_field_size": MAX_HEADER_FIELD_BYTES,
            "logger": _protocol_log,
            # aiohttp arms this timer when a connection opens and after each response; bytes
            # arriving do not re-arm it, so it also bounds how long a request head may take.
            "keepalive_timeout": settings.http.keepalive_timeout,
        },
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS_KEY] = settings
    app.cleanup_ctx.append(
        backend_context(
            settings.backend,
            settings.backend_timeout,
            backend_credentials(settings),
            settings.backend_server_name,
        )
    )
    add_routes(app)
    if settings.http.metrics:
        app[METRICS_KEY] = FacadeMetrics()
        app.router.add_get("/metrics", serve_metrics)
    return app
