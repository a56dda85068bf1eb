"""``python -m http_facade`` / ``secureroute-facade``: serve HTTP until SIGTERM or SIGINT.

Bad settings (or a busy port) print one line on stderr and exit with code 2.

Usage:
    secureroute-facade --listen 127.0.0.1:3000 --backend localhost:50051
    SECUREROUTE_BACKEND=service:50051 python -m http_facade
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from aiohttp import web

from http_facade.app import create_app
from http_facade.settings import PROG, FacadeSettings, load_facade_settings
from secureroute.settings import SettingsError, configure_logging, exit_bad_settings

__all__ = ["main"]

#: How long open HTTP connections may finish after a signal, seconds.
_SHUTDOWN_TIMEOUT_S = 5.0

_log = logging.getLogger("http_facade")


async def _serve(settings: FacadeSettings) -> None:
    runner = web.AppRunner(create_app(settings), shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.listen.host, settings.listen.port)
        try:
            await site.start()
        except OSError as err:
            raise SettingsError(f"listen: cannot bind {settings.listen}: {err.strerror}") from None
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        for sock in runner.addresses:
            _log.info("%s listening on %s", PROG, _format(sock))
        await stopping.wait()
        _log.info("shutting down")
    finally:
        await runner.cleanup()


def _format(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        settings = load_facade_settings(argv)
    except SettingsError as err:
        exit_bad_settings(PROG, err)
    configure_logging(settings.log_level)
    try:
        asyncio.run(_serve(settings))
    except SettingsError as err:
        exit_bad_settings(PROG, err)


if __name__ == "__main__":
    main()
