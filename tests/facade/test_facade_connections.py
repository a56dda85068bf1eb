"""Each connection's budget (``http_facade.connections``): head size, header count, head time, cap;
and memory handed back after a burst (``http_facade.memory``).

Raw sockets, because no client library sends a head this broken on purpose.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from http_facade.connections import ConnectionBudget
from http_facade.memory import BURST_CONNECTIONS, trim_after_bursts
from service import SecureRouteServer

StartFacade = Callable[..., Awaitable[str]]
WAIT_S = 15.0


async def _answer(port: int, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), WAIT_S)
    finally:
        writer.close()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _body(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


@pytest.fixture
async def facade_port(service: SecureRouteServer, start_facade: StartFacade) -> AsyncIterator[int]:
    url = await start_facade(
        f"127.0.0.1:{service.port}",
        extra=("--max-header-bytes", "4096", "--max-headers", "8", "--header-timeout-s", "0.5"),
    )
    yield int(url.rsplit(":", 1)[1])


async def test_a_head_past_max_header_bytes_is_431_without_echo(facade_port: int) -> None:
    secret = secrets.token_urlsafe(3000)  # 4,000 characters, in 20 fields of 200 bytes
    fields = "".join(f"X-Pad-{i}: {secret[i * 200 : (i + 1) * 200]}\r\n" for i in range(20))
    answer = await _answer(facade_port, f"GET /health HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
    assert _status(answer) == 431
    assert _body(answer) == b"431 Request Header Fields Too Large"
    assert b"Connection: close" in answer and secret[:16].encode() not in answer


async def test_more_header_fields_than_max_headers_is_431(facade_port: int) -> None:
    fields = "".join(f"X-{i}: 1\r\n" for i in range(9))  # with Host: 10 fields, 2 over
    answer = await _answer(facade_port, f"GET /health HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
    assert _status(answer) == 431
    fields = "".join(f"X-{i}: 1\r\n" for i in range(6))  # with Host and Connection: exactly 8
    answer = await _answer(
        facade_port, f"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{fields}\r\n".encode()
    )
    assert _status(answer) == 200


async def test_a_slow_head_is_408_after_header_timeout(facade_port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", facade_port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
        answer = await asyncio.wait_for(reader.read(), WAIT_S)
    finally:
        writer.close()
    assert _status(answer) == 408 and _body(answer) == b"408 Request Timeout"


async def test_keep_alive_requests_each_get_a_fresh_budget(facade_port: int) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 3000 + b"\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", facade_port)
    try:
        for _ in range(3):  # 9,000 bytes in all, 3,000 per head
            writer.write(head)
            status_line = await asyncio.wait_for(reader.readline(), WAIT_S)
            assert b" 200 " in status_line
            length = 0
            while (line := await asyncio.wait_for(reader.readline(), WAIT_S)) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
    finally:
        writer.close()


async def test_pipelined_requests_are_each_answered(facade_port: int) -> None:
    first = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    second = b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    answer = await _answer(facade_port, first + second)
    assert answer.count(b"HTTP/1.1 200 ") == 2


async def test_an_unread_body_closes_the_connection_after_the_answer(facade_port: int) -> None:
    """Its bytes would otherwise count as the next head: one answer (200), never a 431."""
    body = b"b" * 8000  # more than the head budget, under the body cap
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    answer = await _answer(facade_port, head + body + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(answer) == 200 and answer.count(b"HTTP/1.1 ") == 1 and b"431" not in answer


async def test_a_parser_error_under_the_budget_is_a_fixed_400(facade_port: int) -> None:
    token = secrets.token_urlsafe(300)
    head = f"GET /secure-route HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\x00\r\n\r\n".encode()
    answer = await _answer(facade_port, head)
    assert _status(answer) == 400 and _body(answer) == b"400 Bad Request"
    assert token[:16].encode() not in answer


async def test_connections_past_max_connections_are_closed_until_one_ends(
    service: SecureRouteServer, start_facade: StartFacade
) -> None:
    url = await start_facade(f"127.0.0.1:{service.port}", extra=("--max-connections", "2"))
    port = int(url.rsplit(":", 1)[1])
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    try:
        await asyncio.sleep(0.2)  # let the facade see both connections
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), WAIT_S) == b""  # closed unanswered
        writer.close()
    finally:
        for _, held_writer in held:
            held_writer.close()
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(WAIT_S):
            while True:
                try:
                    async with http.get(f"{url}/health") as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:  # a reset on uvloop, a disconnect on asyncio
                    await asyncio.sleep(0.05)  # the held connections are still closing


async def _answered(port: int) -> tuple[asyncio.StreamWriter, bool]:
    """A connection opened, then asked for a page: whether it answered (held open afterwards)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(0.5)  # every connection of the burst is made before any is asked
    try:
        writer.write(b"GET /not-here HTTP/1.1\r\nHost: x\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), WAIT_S)
    except ConnectionError:
        status = b""
    return writer, status.startswith(b"HTTP/1.1 404")


async def test_a_burst_of_connections_never_passes_max_connections(
    service: SecureRouteServer, start_facade: StartFacade
) -> None:
    """Counted when a connection is made, the cap let one accept batch through together (up to the
    listen backlog); it is now checked where each connection starts, one after the other."""
    url = await start_facade(f"127.0.0.1:{service.port}", extra=("--max-connections", "5"))
    port = int(url.rsplit(":", 1)[1])
    results = await asyncio.gather(*(_answered(port) for _ in range(60)))
    try:
        assert sum(answered for _, answered in results) == 5
    finally:
        for writer, _ in results:
            writer.close()


async def test_free_memory_goes_back_after_a_burst_of_connections(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="http_facade.memory")
    budget = ConnectionBudget(
        max_connections=2000, max_header_bytes=16384, max_headers=32, header_timeout_s=10
    )
    trimmer = asyncio.create_task(trim_after_bursts(budget, interval_s=0.05))
    try:
        for _ in range(BURST_CONNECTIONS + 10):
            budget.opened()
        await asyncio.sleep(0.2)  # still in the burst: nothing yet
        assert "returned free memory" not in caplog.text
        budget.open_connections = 3  # the burst is over
        async with asyncio.timeout(WAIT_S):
            while "returned free memory" not in caplog.text:  # noqa: ASYNC110  # a log, no event
                await asyncio.sleep(0.05)
        assert caplog.text.count("returned free memory") == 1  # once per burst
        await asyncio.sleep(0.2)
        assert caplog.text.count("returned free memory") == 1
    finally:
        trimmer.cancel()
