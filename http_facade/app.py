"""The app factory: routes, middlewares (metrics, request id, head budget, body cap), the backend.

Usage:
    app = create_app(settings)                                        # remote: a gRPC channel
    app = create_app(settings, LocalBackend(calls, authenticator))    # the one program
    server = FacadeServer(settings)   # http_facade.runner: create_app(settings) behind the connection budget
"""

from __future__ import annotations

import logging

import grpc
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from http_facade.backend import BackendContext, LocalBackend, backend_context
from http_facade.connections import head_budget_middleware
from http_facade.limits import body_limit_middleware
from http_facade.metrics import METRICS_KEY, FacadeMetrics, metrics_middleware
from http_facade.request_id import request_id_middleware
from http_facade.request_spans import http_middlewares
from http_facade.routes import add_local_routes, add_routes, malformed_authorization_middleware
from http_facade.settings import FacadeSettings
from runtime.tls import ClientTLS, grpc_channel_credentials

__all__ = [
    "MAX_BODY_BYTES",
    "PER_REQUEST_LOGGERS",
    "PROTOCOL_LOG",
    "SETTINGS_KEY",
    "backend_credentials",
    "create_app",
]

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


#: Passed to aiohttp's protocol handler (http_facade.runner) instead of its "aiohttp.server" logger.
PROTOCOL_LOG = logging.getLogger("http_facade.server")
#: The facade's loggers that write a line per refused request (backend errors, unparsable requests):
#: rate-limited like the guard's (runtime.logs).
PER_REQUEST_LOGGERS: tuple[str, ...] = ("http_facade.responses", PROTOCOL_LOG.name)
PROTOCOL_LOG.addFilter(_RedactRejectedRequests())


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


def create_app(
    settings: FacadeSettings,
    backend: BackendContext | LocalBackend | None = None,
    metrics: FacadeMetrics | None = None,
) -> web.Application:
    """The facade app over ``backend``: by default the remote one the settings name; a
    ``LocalBackend`` serves the routes in this process (the one program). ``metrics`` default to
    a registry of their own when the settings name a metrics listener. Raises ``SettingsError``
    when a TLS file cannot be used."""
    if metrics is None and settings.http.metrics_listen is not None:
        # Served by the metrics listener (http_facade.runner), never on the public port.
        metrics = FacadeMetrics()
    # The head budget first: the head is complete once any middleware runs. Metrics next: they
    # see the final status, the router's 404/405 included. The body cap and the Authorization
    # check innermost: their answers still carry the request id and are counted.
    middlewares = [
        head_budget_middleware,
        request_id_middleware,
        body_limit_middleware,
        malformed_authorization_middleware,
    ]
    if metrics is not None:
        middlewares.insert(1, metrics_middleware)
    middlewares[:0] = http_middlewares()  # tracing (when on) outermost: its span covers the rest
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    if metrics is not None:
        app[METRICS_KEY] = metrics
    if isinstance(backend, LocalBackend):
        add_local_routes(app, backend, settings.backend_timeout_s)
        return app
    if backend is None:
        backend = backend_context(
            settings.backend,
            settings.backend_timeout_s,
            backend_credentials(settings),
            settings.backend_server_name,
        )
    app.cleanup_ctx.append(backend)
    add_routes(app, dpop_public_base_url=settings.dpop_public_base_url)
    return app
