"""Port checks before a server binds: "port in use" is a one-line settings error, not a traceback.

gRPC and aiohttp both report a busy port in their own (multi-line, or late) ways, so each
program tries a plain bind first. With several workers the supervisor also *reserves* the
port: it keeps a bound, never-listening socket with SO_REUSEPORT, which resolves port 0 to a
real port, keeps strangers off it, and lets the workers (also SO_REUSEPORT) bind beside it.
A socket that never listens is never handed a connection, so it takes no traffic.

Usage:
    check_bindable(settings.listen, "listen")            # raises SettingsError("listen: ...")
    with reserve_port(settings.listen, "listen") as reserved:
        spawn_workers(port=reserved.getsockname()[1])
"""

from __future__ import annotations

import errno
import socket

from runtime.settings import ListenAddress, SettingsError

__all__ = ["check_bindable", "reserve_port"]


def _address_info(
    listen: ListenAddress, setting: str
) -> tuple[socket.AddressFamily, socket.SocketKind, int, tuple[str, int] | tuple[str, int, int, int]]:
    try:
        infos = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise SettingsError(f"{setting}: cannot resolve {listen.host!r}: {err.strerror}") from None
    family, kind, proto, _, address = infos[0]
    return family, kind, proto, address  # type: ignore[return-value]


def check_bindable(listen: ListenAddress, setting: str) -> None:
    """Raise ``SettingsError`` when nobody could bind ``listen`` now (in use, not ours, no such host)."""
    if listen.port == 0:
        return
    family, kind, proto, address = _address_info(listen, setting)
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC and aiohttp do
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EAFNOSUPPORT:
                return  # let the server decide what to do on a host without this address family
            raise SettingsError(f"{setting}: cannot bind {listen}: {err.strerror}") from None


def reserve_port(listen: ListenAddress, setting: str) -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket on ``listen``; port 0 becomes a free port.

    The caller keeps it open while workers bind the same port with SO_REUSEPORT.
    """
    check_bindable(listen, setting)  # without SO_REUSEPORT: a busy port is an error, never shared
    family, kind, proto, address = _address_info(listen, setting)
    reserved = socket.socket(family, kind, proto)
    try:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind(address)
    except OSError as err:
        reserved.close()
        raise SettingsError(f"{setting}: cannot bind {listen}: {err.strerror}") from None
    return reserved
