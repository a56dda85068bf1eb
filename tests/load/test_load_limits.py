"""Limits of the facade and the service: header and body caps, the per-request deadline,
slowloris clients that must not stall anyone else, and the facade's keep-alive timeout that
also bounds how long a request head may take (``test_facade_connections.py`` has the head budget).

In-process stack from tests/conftest.py (service, facade, issuer): these are about what one
connection can do, not about throughput.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp
import grpc
import pytest
from helpers import fetch, secureroute_stub

from http_facade import limits
from http_facade.app import MAX_BODY_BYTES
from jwt_authn.testing import Fault, LoopbackIssuer
from secureroute.v1 import secureroute_pb2
from service import SecureRouteServer, ServiceSettings


@pytest.mark.parametrize("header", ["Authorization", "X-Padding"])
async def test_a_64_kib_header_is_431_and_the_facade_keeps_serving(
    header: str, facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    value = "Bearer " + "A" * 65_536 if header == "Authorization" else "x" * 65_536
    status = (await fetch(http, f"{facade_url}/secure-route", headers={header: value})).status
    assert status == 431  # the head budget (16 KiB), never 429 or a 5xx
    token = issuer.tokens.issue()
    assert (await fetch(http, f"{facade_url}/secure-route", token)).status == 200


async def test_a_10_mb_body_without_a_token_is_a_4xx(facade_url: str, http: aiohttp.ClientSession) -> None:
    status = (await fetch(http, f"{facade_url}/secure-route", data=b"x" * 10_000_000)).status
    assert 400 <= status < 500


async def test_a_10_mb_body_is_refused_even_with_a_valid_token(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    token = issuer.tokens.issue()
    reply = await fetch(http, f"{facade_url}/secure-route", token, data=b"x" * 10_000_000)
    assert reply.status == 413


@pytest.mark.parametrize(("size", "expected"), [(MAX_BODY_BYTES, 200), (MAX_BODY_BYTES + 1, 413)])
async def test_the_body_cap_is_client_max_size(
    size: int, expected: int, facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    reply = await fetch(http, f"{facade_url}/secure-route", issuer.tokens.issue(), data=b"x" * size)
    assert reply.status == expected


async def _chunks(total: int, size: int = 64 * 1024, pause_s: float = 0.0) -> AsyncIterator[bytes]:
    while total > 0:
        yield b"x" * min(size, total)
        total -= size
        if pause_s:
            await asyncio.sleep(pause_s)


@pytest.mark.parametrize(("total", "expected"), [(1000, 200), (10_000_000, 413)])
async def test_a_chunked_body_is_read_only_up_to_the_cap(
    total: int, expected: int, facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    """Without Content-Length the size shows only by reading: at most cap + 1 bytes are read."""
    headers = {"Authorization": f"Bearer {issuer.tokens.issue()}"}
    async with http.get(f"{facade_url}/secure-route", data=_chunks(total), headers=headers) as response:
        await response.read()
        assert response.status == expected
        if expected == 413:
            assert response.headers["Connection"] == "close"
            assert response.headers["X-Request-Id"]


async def test_a_dribbled_chunked_body_is_a_408(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "BODY_READ_TIMEOUT_S", 0.5)
    headers = {"Authorization": f"Bearer {issuer.tokens.issue()}"}
    body = _chunks(100, size=1, pause_s=0.1)  # 10 s for 100 bytes
    async with http.get(f"{facade_url}/secure-route", data=body, headers=headers) as response:
        assert response.status == 408


async def test_a_chunked_body_that_does_not_decompress_is_a_400_not_a_500(
    facade_url: str, issuer: LoopbackIssuer
) -> None:
    parts = urlsplit(facade_url)
    assert parts.hostname is not None and parts.port is not None
    head = (
        f"GET /secure-route HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {issuer.tokens.issue()}\r\n"
        "Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    answer = await _dribble(
        parts.hostname, parts.port, b"", (head + "10\r\nnot gzip at all!\r\n0\r\n\r\n").encode(), 0
    )
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(b"400 Bad Request: malformed request body")


async def test_a_slow_backend_is_a_504_at_the_facade_deadline(
    issuer: LoopbackIssuer,
    make_service_settings: Callable[..., ServiceSettings],
    start_service: Callable[[ServiceSettings], Awaitable[SecureRouteServer]],
    start_facade: Callable[..., Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    """A cold service waits for its first key set; with the issuer taking 3 s per document,
    the facade's 0.5 s deadline answers 504 (and the gRPC deadline DEADLINE_EXCEEDED)."""
    issuer.fault = Fault(delay_s=3.0)
    app = await start_service(make_service_settings(issuer.url))
    facade_url = await start_facade(f"127.0.0.1:{app.port}", timeout_s=0.5)
    token = issuer.tokens.issue()

    async with http.get(
        f"{facade_url}/secure-route", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 504
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        stub = secureroute_stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SecureRoute(
                secureroute_pb2.SecureRouteRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=0.5,
            )
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def _dribble(host: str, port: int, slow: bytes, rest: bytes, interval_s: float) -> bytes:
    """Send ``slow`` one byte at a time, then ``rest`` at once; return everything read back."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for byte in slow:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(interval_s)
        writer.write(rest)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_slowloris_http_clients_do_not_stall_the_others(
    facade_url: str, http: aiohttp.ClientSession, issuer: LoopbackIssuer
) -> None:
    parts = urlsplit(facade_url)
    assert parts.hostname is not None and parts.port is not None
    token = issuer.tokens.issue()
    request = (
        f"GET /secure-route HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    slow, rest = request[:160], request[160:]
    # 20 clients, each taking about 3 s (160 bytes, 20 ms apart) to send its request head.
    dribblers = [
        asyncio.ensure_future(_dribble(parts.hostname, parts.port, slow, rest, 0.02)) for _ in range(20)
    ]
    await asyncio.sleep(0.2)

    async def normal() -> int:
        return (await fetch(http, f"{facade_url}/secure-route", token)).status

    statuses = await asyncio.gather(*(normal() for _ in range(100)))
    assert set(statuses) == {200}
    assert not any(d.done() for d in dribblers), "the others finished while the slow clients still dribbled"
    answers = await asyncio.gather(*dribblers)
    # Their ~3 s is well inside the keep-alive timeout that bounds a request head: served.
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)


async def _facade_with_keepalive(
    start_facade: Callable[..., Awaitable[str]], service: SecureRouteServer, timeout_s: float
) -> tuple[str, int]:
    url = await start_facade(f"127.0.0.1:{service.port}", extra=("--keepalive-timeout-s", str(timeout_s)))
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


async def test_an_idle_connection_is_closed_after_the_keepalive_timeout(
    service: SecureRouteServer, start_facade: Callable[..., Awaitable[str]]
) -> None:
    host, port = await _facade_with_keepalive(start_facade, service, 0.5)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed without a word
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        writer.close()


async def test_a_slowloris_request_head_is_cut_off_at_the_keepalive_timeout(
    service: SecureRouteServer, start_facade: Callable[..., Awaitable[str]], issuer: LoopbackIssuer
) -> None:
    """Bytes arriving do not re-arm aiohttp's keep-alive timer: a head still incomplete when it
    fires is dropped, however steadily it dribbles."""
    host, port = await _facade_with_keepalive(start_facade, service, 1.0)
    token = issuer.tokens.issue()
    request = f"GET /secure-route HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    # 100 bytes, 50 ms apart: 5 s for the head, the timeout is 1 s.
    started = asyncio.get_running_loop().time()
    try:
        answer = await asyncio.wait_for(_dribble(host, port, request[:100], request[100:], 0.05), 15)
    except OSError:  # ConnectionResetError, BrokenPipeError: writing to the closed connection
        answer = b""
    assert answer == b""
    assert asyncio.get_running_loop().time() - started < 4.5  # cut off, not served at the end


async def test_slowloris_http2_preface_does_not_stall_grpc_calls(
    service: SecureRouteServer, channel: grpc.aio.Channel, issuer: LoopbackIssuer
) -> None:
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    dribblers = [
        asyncio.ensure_future(_dribble("127.0.0.1", service.port, preface, b"", 0.1)) for _ in range(20)
    ]
    await asyncio.sleep(0.2)
    stub = secureroute_stub(channel)
    token = issuer.tokens.issue()
    replies = await asyncio.gather(
        *(
            stub.SecureRoute(
                secureroute_pb2.SecureRouteRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
            for _ in range(100)
        )
    )
    assert {reply.subject for reply in replies} == {"alice"}
    assert not any(d.done() for d in dribblers)
    for dribbler in dribblers:
        dribbler.cancel()
    await asyncio.gather(*dribblers, return_exceptions=True)
