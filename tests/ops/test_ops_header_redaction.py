"""A request aiohttp cannot parse is answered with a fixed phrase: never a quote of its headers.

aiohttp's own 400 for an over-long header line quotes its first ~100 bytes: for an
Authorization header, part of a token. The facade answers a fixed phrase instead: "431 Request
Header Fields Too Large" for a head over its budget, "400 Bad Request" for one aiohttp cannot parse
(``http_facade.connections.GuardedRequestHandler``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from http_facade.connections import fixed_error_text

ServeFacade = Callable[..., Coroutine[Any, Any, str]]


async def _raw_request(port: int, head: bytes) -> bytes:
    """Send raw bytes (no client library would send these) and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def _token(size: int) -> str:
    return secrets.token_urlsafe(size)[:size]


def _assert_clean(answer: bytes, token: str) -> None:
    status_line, _, rest = answer.partition(b"\r\n")
    status = int(status_line.split()[1])
    assert 400 <= status < 500, answer[:200]
    body = rest.partition(b"\r\n\r\n")[2]
    assert body == fixed_error_text(status).encode(), body[:200]
    for start in range(0, len(token) - 8, 8):  # no 8 bytes of the token anywhere in the answer
        assert token[start : start + 8].encode() not in answer


@pytest.mark.parametrize("size", [20 * 1024, 70 * 1024])
async def test_oversized_authorization_is_answered_without_the_token(
    serve_facade: ServeFacade, size: int
) -> None:
    url = await serve_facade("--backend", "127.0.0.1:1")
    port = int(url.rsplit(":", 1)[1])
    token = _token(size)
    head = f"GET /secure-route HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    _assert_clean(await _raw_request(port, head), token)


async def test_oversized_request_line_is_answered_without_echo(serve_facade: ServeFacade) -> None:
    url = await serve_facade("--backend", "127.0.0.1:1")
    port = int(url.rsplit(":", 1)[1])
    secret = _token(20 * 1024)
    _assert_clean(await _raw_request(port, f"GET /?t={secret} HTTP/1.1\r\nHost: x\r\n\r\n".encode()), secret)


async def test_the_real_program_answers_without_quoting(spawn: Any) -> None:
    facade = await spawn("http_facade", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1")
    port = (await facade.listening()).port
    token = _token(20 * 1024)
    head = f"GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    _assert_clean(await _raw_request(port, head), token)  # over the head budget: 431
    small = _token(2048)  # under it, but unparsable (a NUL): aiohttp's 400, with a fixed text
    head = f"GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {small}\x00\r\n\r\n".encode()
    _assert_clean(await _raw_request(port, head), small)
    assert await facade.stop() == 0
    assert all(token[:16] not in line and small[:16] not in line for line in facade.lines)


def test_fixed_phrases() -> None:
    assert fixed_error_text(400) == "400 Bad Request"
    assert fixed_error_text(431) == "431 Request Header Fields Too Large"
    assert fixed_error_text(499) == "499 Error"
