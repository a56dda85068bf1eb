"""Helpers several test directories share: the service's stub, a trailer's value, deeply nested
claims, a refused port, one HTTP request read in full, a Debian program (installed
when missing). (pytest puts ``tests/`` on ``sys.path`` for its conftest, so any test module imports
this as ``helpers``.)

Usage:
    from helpers import fetch, nested, port_refused, secureroute_stub, trailer

    stub = secureroute_stub(channel)
    assert trailer(error, "www-authenticate") is not None
    assert (await fetch(http, f"{url}/secure-route", token))[:2] == (200, "Super secret stuff")
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, cast

import aiohttp
import grpc
import pytest
from multidict import CIMultiDictProxy

from secureroute.v1 import secureroute_pb2_grpc

__all__ = [
    "Reply",
    "debian_program",
    "fetch",
    "nested",
    "port_refused",
    "secureroute_stub",
    "trailer",
]


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


def debian_program(name: str) -> str:
    """The path of Debian's ``name`` (its package has the same name), apt-installed when missing and
    allowed (root, apt-get, network); the test is skipped when it cannot be had."""
    found = shutil.which(name)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get") is not None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", name]):
            if subprocess.run(argv, capture_output=True, timeout=900, check=False, env=env).returncode != 0:
                break
        found = shutil.which(name)
    if found is None:
        pytest.skip(f"no {name} on PATH, and it could not be apt-installed (not root, no apt, or no network)")
    return found


async def port_refused(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port`` (a connection is refused)."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


class Reply(NamedTuple):
    status: int
    text: str
    headers: CIMultiDictProxy[str]


async def fetch(
    http: aiohttp.ClientSession,
    url: str,
    token: str | None = None,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
) -> Reply:
    """One request on ``http`` (``Authorization: Bearer token`` when a token is given), its body
    read in full: the status, the body as text (undecodable bytes replaced) and the headers."""
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    async with http.request(method, url, headers=sent, data=data) as response:
        return Reply(response.status, await response.text(errors="replace"), response.headers)
