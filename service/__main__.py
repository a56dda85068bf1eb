"""``python -m service`` / ``secureroute-service``: run the gRPC server until SIGTERM or SIGINT.

Bad settings (or a busy port) print one line on stderr and exit with code 2; a signal drains
the server (health NOT_SERVING, in-flight RPCs finish within the grace period) and exits 0.

Usage:
    secureroute-service --issuer https://idp.example.com/ --audience secureroute --listen 127.0.0.1:50051
    SECUREROUTE_ISSUER=... SECUREROUTE_AUDIENCE=secureroute python -m service
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from jwt_authn import AuthnConfig
from secureroute.settings import SettingsError, configure_logging, exit_bad_settings
from service.server import build_server
from service.settings import PROG, ServiceSettings, authn_config, load_service_settings

__all__ = ["main"]

_log = logging.getLogger("service")


async def _serve(settings: ServiceSettings, config: AuthnConfig) -> None:
    app = build_server(settings, config)
    await app.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    # Tests and operators read the bound port from this line (useful with port 0).
    _log.info("%s listening on %s port %d", PROG, settings.listen.host, app.port)
    await stopping.wait()
    _log.info("shutting down: draining for up to %.1f s", settings.grace_period)
    await app.stop()
    _log.info("stopped")


def main(argv: Sequence[str] | None = None) -> None:
    try:
        settings = load_service_settings(argv)
        config = authn_config(settings)
    except ValueError as err:  # SettingsError, or IssuerConfig's "setting: problem"
        exit_bad_settings(PROG, err)
    configure_logging(settings.log_level)
    try:
        asyncio.run(_serve(settings, config))
    except SettingsError as err:  # the port is in use
        exit_bad_settings(PROG, err)


if __name__ == "__main__":
    main()
