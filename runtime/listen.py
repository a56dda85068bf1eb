"""Where a program listens: the ``host:port`` address, its parsing, and the checks before a server binds.

An address is ``host:port`` or ``[ipv6]:port`` (port 0 picks a free port); ``off`` turns an optional
listener off. Settings take ``Listen`` and ``OptionalListen`` fields.

"Port in use" is a one-line settings error, not a traceback: gRPC and aiohttp both report a busy
port in their own (multi-line, or late) ways, so each program tries a plain bind first. With several
workers the supervisor also *reserves* the port: it keeps a bound, never-listening socket with
SO_REUSEPORT, which resolves port 0 to a real port, keeps strangers off it, and lets the workers
(also SO_REUSEPORT) bind beside it. A socket that never listens is never handed a connection.

Usage:
    listen = parse_listen("[::]:50051")                   # ListenAddress("::", 50051)
    check_bindable(settings.listen, "listen")            # raises SettingsError("listen: ...")
    with reserve_port(settings.listen, "listen") as reserved:
        spawn_workers(port=reserved.getsockname()[1])
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Annotated

from pydantic import PlainValidator

from runtime.settings import SettingsError

__all__ = [
    "Listen",
    "ListenAddress",
    "OptionalListen",
    "check_bindable",
    "parse_listen",
    "reserve_port",
    "split_host_port",
]


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """A host and port to listen on. ``host`` is bare (no brackets), as sockets want it."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?"
)


def split_host_port(text: str) -> tuple[str, int]:
    """``host:port`` or ``[ipv6]:port`` as a bare host and a port. Raises ``ValueError``."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"not a host:port address: {text!r}")
        try:
            ipaddress.IPv6Address(host)  # brackets are only for IPv6 literals
        except ValueError:
            raise ValueError(f"not an IPv6 address in brackets: {text!r}") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError(f"not a host:port address (bracket IPv6 hosts, e.g. [::]:50051): {text!r}")
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            if not _HOSTNAME.fullmatch(host):
                raise ValueError(f"not a valid host name: {host!r}") from None
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535: {text!r}")
    return host, int(port_text)


def parse_listen(value: object) -> ListenAddress:
    """``host:port`` or ``[ipv6]:port``; port 0 picks a free port."""
    if isinstance(value, ListenAddress):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a host:port string")
    return ListenAddress(*split_host_port(value))


def _parse_optional_listen(value: object) -> ListenAddress | None:
    """``host:port`` like ``parse_listen``, or ``off`` for "do not listen"."""
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() in ("off", "none", "false", "no", "0"):
        return None
    return parse_listen(value)


Listen = Annotated[ListenAddress, PlainValidator(parse_listen)]
OptionalListen = Annotated[ListenAddress | None, PlainValidator(_parse_optional_listen)]


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
