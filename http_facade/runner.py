"""Serving the app: an AppRunner whose parser errors never echo the request, and the TCP/TLS site.

aiohttp answers a request it cannot parse (an over-long header line, a bad request line) with
a 400 whose body quotes the offending bytes: for an oversized ``Authorization`` header that is
the start of a token. ``QuietErrorsRunner`` swaps in a request handler whose error responses
are a fixed phrase per status. (aiohttp has no public hook for the protocol class, so the
runner adjusts the ``web.Server`` it builds; a test pins the behaviour.)

Usage:
    runner = QuietErrorsRunner(create_app(settings), shutdown_timeout=5.0)
    await runner.setup()
    addresses = await start_site(runner, settings.http.listen, ssl_context=None, reuse_port=False)
    ...
    await runner.cleanup()
"""

from __future__ import annotations

import ssl
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from secureroute.settings import ListenAddress, SettingsError

__all__ = ["QuietErrorsRunner", "fixed_error_text", "start_site"]


def fixed_error_text(status: int) -> str:
    """``"400 Bad Request"``: what a client reads instead of aiohttp's quote of its request."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"


class _QuietRequestHandler(RequestHandler):
    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp builds its own fixed text for 500; every other status would quote ``message``.
        if status != HTTPStatus.INTERNAL_SERVER_ERROR:
            message = fixed_error_text(status)
        return super().handle_error(request, status, exc, message)


class _QuietServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _QuietRequestHandler(self, loop=self._loop, **self._kwargs)


class QuietErrorsRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparsable requests without quoting them."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same state, one method different: Server keeps no per-class data.
        server.__class__ = _QuietServer
        return server


async def start_site(
    runner: web.AppRunner,
    listen: ListenAddress,
    *,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> list[Any]:
    """Listen on ``listen`` (HTTPS when ``ssl_context``); returns the bound addresses.

    Raises ``SettingsError("listen: cannot bind ...")`` when the port is taken.
    """
    site = web.TCPSite(
        runner, listen.host, listen.port, ssl_context=ssl_context, reuse_port=reuse_port or None
    )
    try:
        await site.start()
    except OSError as err:
        raise SettingsError(f"listen: cannot bind {listen}: {err.strerror}") from None
    return list(runner.addresses)
