"""Sending one set of ``authorization`` values over gRPC and over HTTP, and what came back.

HTTP goes through aiohttp's client unless the values are something it refuses to send
(control characters, non-ASCII) or several headers: then a raw socket writes the bytes
exactly, as a hostile client would.

Usage:
    outcome = await call_grpc(stub, ("Bearer eyJ...",))
    outcome = await call_http(session, facade_url, ("Bearer eyJ...",))
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import grpc
from corpus import NOT_SENT
from helpers import trailer
from multidict import CIMultiDict

from secureroute.v1 import secureroute_pb2

__all__ = ["NOT_SENT", "GrpcOutcome", "HttpOutcome", "call_grpc", "call_http", "grpc_sendable"]

WAIT_S = 10.0


@dataclass(frozen=True)
class GrpcOutcome:
    code: str  # a grpc.StatusCode name, or NOT_SENT
    details: str | None = None
    challenge: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class HttpOutcome:
    status: int
    message: str | None = None
    challenge: str | None = None
    retry_after: str | None = None
    subject: str | None = None
    body: str = ""


def grpc_sendable(values: tuple[str, ...]) -> bool:
    """gRPC ASCII metadata values are printable ASCII only (grpc-core checks before sending)."""
    return all(" " <= ch <= "~" for value in values for ch in value)


async def call_grpc(stub: object, values: tuple[str, ...], *, timeout_s: float = WAIT_S) -> GrpcOutcome:
    metadata = tuple(("authorization", value) for value in values)
    try:
        reply = await stub.SecureRoute(  # type: ignore[attr-defined]
            secureroute_pb2.SecureRouteRequest(), metadata=metadata or None, timeout=timeout_s
        )
    except grpc.aio.AioRpcError as err:
        return GrpcOutcome(err.code().name, err.details(), trailer(err, "www-authenticate"))
    except Exception:
        if grpc_sendable(values):
            raise
        return GrpcOutcome(NOT_SENT)  # grpc-core's ExecuteBatchError: nothing left the client
    return GrpcOutcome("OK", subject=reply.subject)


def _needs_raw_socket(values: tuple[str, ...]) -> bool:
    return len(values) > 1 or not grpc_sendable(values)


async def call_http(
    session: aiohttp.ClientSession, base_url: str, values: tuple[str, ...], *, path: str = "/secure-route"
) -> HttpOutcome:
    if _needs_raw_socket(values):
        return await raw_http(base_url, path, [("Authorization", value) for value in values])
    headers = {"Accept": "application/json"}
    if values:
        headers["Authorization"] = values[0]
    async with session.get(base_url + path, headers=headers) as response:
        body = await response.read()
        return _outcome(response.status, response.headers.get("Content-Type", ""), body, response.headers)


def _outcome(status: int, content_type: str, body: bytes, headers: object) -> HttpOutcome:
    message = subject = None
    if content_type.startswith("application/json"):
        document = json.loads(body)
        message, subject = document.get("message"), document.get("subject")
    get = headers.get  # type: ignore[attr-defined]
    text = body.decode("latin-1")
    return HttpOutcome(status, message, get("WWW-Authenticate"), get("Retry-After"), subject, text)


async def raw_http(
    base_url: str, path: str, header_fields: list[tuple[str, str]], *, timeout_s: float = WAIT_S
) -> HttpOutcome:
    """One HTTP/1.1 request written byte for byte (UTF-8 for non-ASCII), read to the close."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None and parts.port is not None
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}", "Accept: application/json"]
    lines += [f"{name}: {value}" for name, value in header_fields]
    lines += ["Connection: close", "", ""]
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write("\r\n".join(lines).encode("utf-8"))
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout_s)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    # Case-insensitive, as HTTP field names are (str.title() would spell "Www-Authenticate").
    headers: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.add(name.strip(), value.strip())
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return _outcome(int(status_line.split()[1]), headers.get("Content-Type", ""), body, headers)


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out
