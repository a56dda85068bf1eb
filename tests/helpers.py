"""Helpers several test directories share: the service's stub, a trailer's value, deeply nested
claims, a refused port. (pytest puts ``tests/`` on ``sys.path`` for its conftest, so any test
module imports this as ``helpers``.)

Usage:
    from helpers import nested, port_refused, secureroute_stub, trailer

    stub = secureroute_stub(channel)
    assert trailer(error, "www-authenticate") is not None
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

import grpc

from secureroute.v1 import secureroute_pb2_grpc

__all__ = ["nested", "port_refused", "secureroute_stub", "trailer"]


def secureroute_stub(channel: grpc.aio.Channel) -> Any:
    """The generated ``SecureRouteService`` stub on ``channel`` (its generated code is untyped)."""
    return secureroute_pb2_grpc.SecureRouteServiceStub(channel)  # type: ignore[no-untyped-call]


def trailer(error: grpc.aio.AioRpcError, key: str) -> str | None:
    """The value of trailing metadata ``key`` of a failed call, or None."""
    trailers = cast(Iterable[tuple[str, str | bytes]], error.trailing_metadata() or ())
    for name, value in trailers:
        if name == key:
            return str(value)
    return None


def nested(levels: int, *, array: bool = False, bottom: object = "bottom") -> Any:
    """A value ``levels`` objects (or arrays) deep around ``bottom``: ``{"x": {"x": "bottom"}}``."""
    value: Any = bottom
    for _ in range(levels):
        value = [value] if array else {"x": value}
    return value


async def port_refused(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port`` (a connection is refused)."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False
